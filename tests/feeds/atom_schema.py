"""Validate Atom 1.0 documents against RFC 4287 Appendix B's RELAX NG schema (atom.rnc)."""

from __future__ import annotations

import functools
import re
from pathlib import Path

import rnc2rng
from lxml import etree

SCHEMA = Path(__file__).with_name("atom.rnc")

# rnc2rng turns `namespace local = ""` (the RFC's name for "no namespace", used in
# undefinedAttribute) into `xmlns:local=""` on the <grammar> element, which XML
# Namespaces 1.0 forbids, so lxml refuses the whole schema. The declaration is never
# used: every name in the converted schema carries its namespace in an `ns` attribute
# (`<nsName ns=""/>` here). Dropping it leaves atom.rnc exactly as the RFC has it.
_EMPTY_PREFIX_DECLARATION = re.compile(r'\s+xmlns:[A-Za-z_][\w.-]*=""')

# The documents under test come from the suite itself, but read them like untrusted
# input all the same: no entities expanded, no DTD or anything else fetched.
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)


@functools.cache
def atom_schema() -> etree.RelaxNG:
    """The compiled schema, built once per test session."""
    rng = rnc2rng.dumps(rnc2rng.loads(SCHEMA.read_text(encoding="utf-8")))
    rng = _EMPTY_PREFIX_DECLARATION.sub("", rng)
    return etree.RelaxNG(etree.fromstring(rng.encode("utf-8")))


def validate_atom(data: bytes) -> None:
    """Raise AssertionError, with lxml's messages and line numbers, unless data is valid Atom."""
    try:
        document = etree.fromstring(data, _PARSER)
    except etree.XMLSyntaxError as error:
        raise AssertionError(f"not well-formed XML: {error}") from error
    schema = atom_schema()
    if not schema.validate(document):
        errors = "\n".join(_describe(entry) for entry in schema.error_log)
        raise AssertionError(f"not valid Atom (RFC 4287 Appendix B schema):\n{errors}")


def _describe(entry: etree._LogEntry) -> str:
    """One line of the error log; libxml2 gives some RELAX NG errors no node, hence no line."""
    where = f"line {entry.line}, column {entry.column}" if entry.line > 0 else "no line"
    if entry.path:
        where += f" ({entry.path})"
    return f"  {where}: {entry.message}"
