"""Turning fetched text into safe text and safe HTML.

Everything a source yields passes through here: titles and summaries become one-line
plain text without control characters (nothing can reach a mail header), bodies become
HTML sanitized by nh3 (no script, no event handler, no ``javascript:`` URL).
"""

from __future__ import annotations

import html
import re
import unicodedata

import nh3
from markdown_it import MarkdownIt

MAX_TITLE = 500
MAX_SUMMARY = 2_000
MAX_BODY = 200_000

# Lone surrogates too: they cannot be encoded, so nothing could store or send them.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
_SPACE = re.compile(r"\s+")
_TAG = re.compile(r"<[^>]*>")

_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "caption", "cite", "code", "dd", "del", "dl",
    "dt", "em", "figcaption", "figure", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img",
    "ins", "li", "ol", "p", "pre", "q", "s", "small", "strong", "sub", "sup", "table",
    "tbody", "td", "tfoot", "th", "thead", "tr", "u", "ul",
}  # fmt: skip
_ATTRIBUTES = {
    "a": {"href", "title", "hreflang"},
    "img": {"src", "alt", "title", "width", "height"},
    "abbr": {"title"},
    "td": {"colspan", "rowspan"},
    "th": {"colspan", "rowspan", "scope"},
    "*": {"lang", "dir"},
}
_markdown = MarkdownIt("commonmark", {"html": True, "linkify": False}).enable("table")


def clean_text(value: str, *, limit: int = MAX_TITLE) -> str:
    """One line of plain text: tags dropped, entities decoded, no control characters."""
    text = html.unescape(_TAG.sub(" ", value))
    text = unicodedata.normalize("NFC", _CONTROL.sub(" ", text))
    text = _SPACE.sub(" ", text).strip()
    if len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return text


def sanitize_html(value: str, *, limit: int = MAX_BODY) -> str:
    """HTML that carries no script, style, event handler or dangerous URL."""
    return sanitize_html_bounded(value, limit=limit)[0]


def sanitize_html_bounded(value: str, *, limit: int) -> tuple[str, bool]:
    """Sanitized HTML of at most about ``limit`` characters, and whether it was cut."""
    cleaned = nh3.clean(
        _CONTROL.sub("", value),
        tags=_TAGS,
        attributes=_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer",
        strip_comments=True,
    )
    if len(cleaned) <= limit:
        return cleaned, False
    # Cut at a tag boundary and let nh3 close what the cut left open.
    cut = cleaned.rfind("<", 0, limit)
    cleaned = nh3.clean(
        cleaned[: cut if cut > 0 else limit],
        tags=_TAGS,
        attributes=_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer",
    )
    return cleaned, True


# Characters XML 1.0 does not allow anywhere (§2.2), lone surrogates included.
_NOT_XML = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_safe(value: str) -> str:
    """``value`` without the characters an XML document cannot hold."""
    return _NOT_XML.sub("", value)


def render_markdown(source: str) -> str:
    """Markdown (CommonMark + tables) to sanitized HTML."""
    return sanitize_html(_markdown.render(source))


def summary_from_html(body_html: str, *, limit: int = 300) -> str:
    """A plain-text summary taken from the start of a body."""
    return clean_text(body_html, limit=limit)


_SPACE_OR_CONTROL = re.compile(r"[\x00-\x20\x7f-\x9f\u2028\u2029]")


def web_link(url: str | None) -> str | None:
    """``url`` when it is an http(s) link with nothing a page or XML cannot hold as it
    is (spaces, controls), else ``None``: nothing else becomes a link to click."""
    if not url or not url.lower().startswith(("https://", "http://")):
        return None
    return url if xml_safe(url) == url and not _SPACE_OR_CONTROL.search(url) else None
