"""A fetched web page as a parsed document: decoded, parsed, its links made absolute.

Bytes are decoded the way browsers do (WHATWG Encoding, "determine the character
encoding": BOM, then the HTTP charset, then ``<meta charset>``, then UTF-8, without the
standard's guessing), parsed by lxml, and every link is resolved against the page's URL
after redirects and its ``<base href>``, so that the ``html`` source only meets absolute
http(s) URLs.
"""

from __future__ import annotations

import codecs
import contextlib
import re
from typing import Any
from urllib.parse import urldefrag, urljoin, urlsplit

import lxml.html

from publisher.sources._http import HttpResponse

_XML_DECLARATION = re.compile(r"^\s*<\?xml[^>]*\?>")
_HEADER_CHARSET = re.compile(r"""charset\s*=\s*["']?([-\w.:]+)""", re.IGNORECASE)
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([-\w.:]+)""", re.IGNORECASE)
# WHATWG Encoding: these labels mean windows-1252 on the web.
_WEB_ALIASES = {"ascii": "cp1252", "latin_1": "cp1252", "iso8859-1": "cp1252"}
_BOMS = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)


def decode_html(content: bytes, content_type: str | None) -> str:
    """A page's text: BOM, else the HTTP charset, else ``<meta charset>``, else UTF-8
    (the order of the WHATWG encoding sniffing algorithm, without its guessing)."""
    for bom, encoding in _BOMS:
        if content.startswith(bom):
            return content[len(bom) :].decode(encoding, "replace")
    header = _HEADER_CHARSET.search(content_type or "")
    meta = _META_CHARSET.search(content[:4096])
    candidates = (
        (header[1] if header else None, False),
        (meta[1].decode("ascii") if meta else None, True),
    )
    for label, in_page in candidates:
        codec = _codec(label, in_page=in_page)
        if codec is not None:
            return content.decode(codec, "replace")
    return content.decode("utf-8", "replace")


def _codec(label: str | None, *, in_page: bool) -> str | None:
    if not label:
        return None
    try:
        name = codecs.lookup(label).name
    except LookupError:
        return None
    if in_page and name.startswith("utf-16"):
        return "utf-8"  # a page that could be read to find its meta tag is not UTF-16
    return _WEB_ALIASES.get(name, name)


def parse_page(response: HttpResponse) -> Any:
    """The parsed page with every link made absolute (``<base href>`` honoured)."""
    text = _XML_DECLARATION.sub("", decode_html(response.content, response.content_type), 1)
    doc = lxml.html.document_fromstring(text)
    base = response.url
    for element in doc.iter("base"):
        if href := (element.get("href") or "").strip():
            with contextlib.suppress(ValueError):  # a malformed base is ignored
                base = urljoin(base, href)
            break
    # resolve_base_href=False: lxml's own pass would raise on a malformed URL.
    doc.make_links_absolute(base, resolve_base_href=False, handle_failures="discard")
    return doc


def web_url(href: str | None) -> str | None:
    """An http(s) link without its fragment; ``None`` for any other link."""
    if not href:
        return None
    try:
        url = urldefrag(href.strip()).url
        scheme = urlsplit(url).scheme.lower()
    except ValueError:
        return None
    return url if scheme in {"http", "https"} else None
