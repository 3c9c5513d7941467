"""What the property tests share: hostile text, an inspector of HTML, a store to copy.

Hypothesis calls a test function once and runs every example inside that call, so a
function-scoped fixture (``tmp_path``, ``engine``) would be one and the same for all the
examples. What an example needs fresh, it makes itself: a ``TemporaryDirectory`` and a
copy of :func:`store_template`, a store migrated once per session.

Examples that failed are kept in ``.hypothesis/`` (Hypothesis keeps git out of it) and
tried first on the next run. ``PUBLISHER_PROPERTY_SCALE=20`` runs twenty times as many
examples as CI does, for a longer hunt.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import lxml.html
import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from sqlalchemy import Engine

from publisher.store import open_store
from publisher.store.database import create_store_engine
from publisher.taxonomy import Taxonomy, load_taxonomy

# Read once at import: strategies are built before any fixture exists.
TAXONOMY: Taxonomy = load_taxonomy()
# The nine locales of the default settings.
LOCALES = ("en", "fr", "de", "it", "ru", "es", "uk", "tr", "ar")


_SCALE = float(os.environ.get("PUBLISHER_PROPERTY_SCALE", "1"))


def examples(count: int) -> settings:
    """Hypothesis settings for ``count`` examples. No deadline: one example collects,
    renders or parses for tens of milliseconds, more on a busy two-core machine."""
    return settings(
        max_examples=max(1, round(count * _SCALE)),
        deadline=None,
        # No "explain" phase: on a failure it re-runs the test hundreds of times (minutes
        # for a collection cycle) to say which parts of the example matter.
        phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


# -- hostile text -----------------------------------------------------------------------

# Markup, URLs and header syntax that must come out inert, whole or cut anywhere.
HOSTILE = (
    "<script>alert(1)</script>",
    "<SCRIPT SRC=//evil.example/x.js></SCRIPT>",
    "<img src=x onerror=alert(1)>",
    '<a href="javascript:alert(1)">x</a>',
    '<a href=" jAvAsCrIpT:alert(1)">x</a>',
    '<a href="java&#x09;script:alert(1)">x</a>',
    '<a href="&#106;avascript:alert(1)">x</a>',
    "<a href='vbscript:msgbox(1)'>x</a>",
    "<svg onload=alert(1)>",
    "<iframe src=javascript:alert(1)></iframe>",
    "<object data=javascript:alert(1)></object>",
    "<form action=javascript:alert(1)><button>x</button></form>",
    '<p style="background:url(javascript:alert(1))" onclick="alert(1)">p</p>',
    "<style>*{x:expression(alert(1))}</style>",
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    '<noscript><p title="</noscript><img src=x onerror=alert(1)>">',
    "[x](javascript:alert(1))",
    "<!--",
    "-->",
    "<![CDATA[",
    "]]>",
    "--",
    "&",
    "&amp;",
    "&#0;",
    "&lt;script&gt;alert(1)&lt;/script&gt;",
    '" onmouseover="alert(1)',
    "' onfocus='alert(1)",
    "\r\nBcc: x@evil.example",
    "\nX-Injected: 1\n",
    "\x00",
    "\x0b\x0c\x1b\x7f\x85",
    "\u2028\u2029",
    "\t",
    "\u202e",
    "%%UNSUBSCRIBE_URL%%",
    "Тридцать следователей",
    "العربية",
)


def hostile_text(
    *, min_pieces: int = 0, max_pieces: int = 8, surrogates: bool = False
) -> st.SearchStrategy[str]:
    """Any text (control characters included), mixed with pieces of :data:`HOSTILE`;
    lone surrogates too when ``surrogates``, as a Python ``str`` may hold them."""
    # codec="utf-8": every code point UTF-8 can encode, so no surrogates unless asked for.
    pieces = st.text(st.characters(codec="utf-8"), min_size=1, max_size=20) | st.sampled_from(
        HOSTILE
    )
    if surrogates:
        pieces |= st.text(st.characters(categories=["Cs"]), min_size=1, max_size=3)
    return st.lists(pieces, min_size=min_pieces, max_size=max_pieces).map("".join)


# -- what must never be found -----------------------------------------------------------

# C0 and C1 controls (CR, LF and NEL among them), Unicode's line and paragraph
# separators, and lone surrogates.
_NOT_IN_A_LINE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")


def line_problem(text: str) -> str | None:
    """Why ``text`` is not one clean line of plain text, or ``None``."""
    found = _NOT_IN_A_LINE.search(text)
    if found:
        return f"{found.group()!r} at {found.start()} in {text[:200]!r}"
    return None


_EXECUTABLE_TAGS = {"script", "iframe", "frame", "object", "embed", "applet", "base"}
_URL_ATTRIBUTES = {
    "href", "src", "action", "formaction", "background", "poster", "cite", "longdesc",
    "lowsrc", "dynsrc", "data", "codebase", "srcset", "xlink:href",
}  # fmt: skip
# Browsers drop C0 controls and spaces around a URL, and tabs and newlines inside it.
_URL_NOISE = re.compile(r"[\x00-\x20\x7f-\x9f]")
_EXECUTABLE_URL = re.compile(r"^(?:javascript:|vbscript:|livescript:|data:text/html)", re.I)


def executable_url(value: str) -> bool:
    """Whether a browser would run ``value`` when following or loading it."""
    return bool(_EXECUTABLE_URL.match(_URL_NOISE.sub("", value)))


def executable_parts(html: str) -> list[str]:
    """What a browser or mail client could run in ``html`` (a document or a fragment):
    script-like elements, event-handler attributes, executable URLs."""
    if not html.strip():
        return []
    found = []
    for element in lxml.html.document_fromstring(html).iter():
        if not isinstance(element.tag, str):  # comments, processing instructions
            continue
        tag = element.tag.lower()
        if tag in _EXECUTABLE_TAGS:
            found.append(f"<{tag}> element")
        for name, value in element.attrib.items():
            name = name.lower()
            if name.startswith("on"):
                found.append(f"<{tag} {name}={value!r}>")
            elif name in _URL_ATTRIBUTES and executable_url(value):
                found.append(f"<{tag} {name}={value!r}>")
    return found


# -- shared fixtures --------------------------------------------------------------------


@pytest.fixture(scope="session")
def store_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite store migrated once; each example works on a copy of it."""
    path = tmp_path_factory.mktemp("store-template") / "publisher.db"
    open_store(f"sqlite:///{path}").dispose()
    return path


@contextmanager
def fresh_store(template: Path, folder: Path) -> Iterator[Engine]:
    """An empty, migrated store in ``folder``: a copy of ``template``, ten times faster
    than migrating anew."""
    path = folder / "publisher.db"
    shutil.copyfile(template, path)
    engine = create_store_engine(f"sqlite:///{path}")
    try:
        yield engine
    finally:
        engine.dispose()
