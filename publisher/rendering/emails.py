"""Localized emails: an alert for one item, a digest for several; HTML and plain text.

Rendering is per rule, not per recipient: subscribers who share a rule get the same
bytes except for their personal parts, which are rendered as the markers below for the
caller to replace per recipient (outside HTML, so the replacement is a byte substitution).

A digest of 200 items would cost some 20 ms rendered whole (the item templates, then CSS
inlining of the whole document), so a message is assembled instead:

- each item's block is rendered once per (item version, locale, language shown) for
  every time zone, its moments left as marks (:class:`DeferredZone`) and filled in per
  zone, written as CSS inlining writes text;
- its CSS is inlined once per message template, in place: the first message that shows
  the block renders the whole document with the block between two comments and keeps
  what the inliner wrote between them;
- each message renders and inlines only its own frame, a comment standing in for each
  block, and the inlined blocks are put in the comments' places; the blocks' long texts
  stay apart as :class:`Shared` pieces (``RenderedEmail.html_pieces``), which the
  outbox stores once for every message that shows them.

This gives the bytes rendering whole gives as long as the templates use a moment or a
block only by showing it and the stylesheet's selectors do not count siblings, which
holds for the bundled templates (a test compares both ways). For other templates the
first message of each kind and locale is rendered both ways, and if the two differ that
kind and locale are rendered whole from then on, with a warning in the log.

Only the words and the formatting happen here; MIME, headers and sending do not.
"""

from __future__ import annotations

import logging
import re
import secrets
import threading
from collections import Counter, OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from html import escape as html_escape
from pathlib import Path
from typing import Any

import css_inline
from babel import Locale
from markupsafe import Markup

from publisher.cleaning import web_link
from publisher.matching.language import choose_translation
from publisher.rendering import formatting
from publisher.rendering.catalogs import FALLBACK_LANGUAGE, Catalog
from publisher.rendering.environment import DeferredZone, Environments
from publisher.store.items import StoredItem
from publisher.subscriptions.model import Rule
from publisher.taxonomy import Taxonomy

# The recipient's one-click unsubscribe URL (RFC 8058's HTTPS target), in both parts.
# Only ASCII letters, "%" and "_": quoted-printable leaves it as it is, and HTML needs
# no escaping of it, so the caller may replace it in the encoded bytes.
UNSUBSCRIBE_URL_MARK = "%%UNSUBSCRIBE_URL%%"
PERSONAL_MARKS = (UNSUBSCRIBE_URL_MARK,)

# A digest subject names at most this many fields of work.
SUBJECT_FIELDS = 3

log = logging.getLogger(__name__)


# A piece of an item block this long or longer is Shared; a shorter one is copied.
SHARED_FROM = 200


class Shared(str):
    """A piece of a message that many messages show alike (an item's block between its
    moments), kept apart so that it can be stored once for all of them. A string, so
    pieces join as they are; ``cache`` is the consumer's, for what it makes of the piece
    once."""

    cache: object = None


@dataclass(frozen=True, slots=True)
class RenderedEmail:
    """One message's parts for every subscriber of a rule, personal parts as markers."""

    subject: str
    html: str
    text: str
    locale: str  # the subscriber's locale, as the rule gives it
    # An assembled message's parts as pieces, joined into ``html`` and ``text``: plain
    # texts and Shared ones in turn, plain first and last.
    html_pieces: tuple[str, ...] | None = field(default=None, compare=False)
    text_pieces: tuple[str, ...] | None = field(default=None, compare=False)

    def personalized(self, *, unsubscribe_url: str) -> RenderedEmail:
        """A copy with the personal parts filled in (previews; bulk sending substitutes bytes)."""
        return replace(
            self,
            html=self.html.replace(UNSUBSCRIBE_URL_MARK, html_escape(unsubscribe_url)),
            text=self.text.replace(UNSUBSCRIBE_URL_MARK, unsubscribe_url),
            html_pieces=None,
            text_pieces=None,
        )


@dataclass(frozen=True, slots=True)
class _ItemView:
    """What the item templates see of an item: one translation, the tags as slugs."""

    id: str
    title: str
    summary: str
    url: str
    lang: str  # BCP 47 tag of the text shown: "en", "pt-BR"
    dir: str  # "ltr" or "rtl", the text's own direction
    foreign: bool  # shown in another language than the reader's
    published: datetime
    updated: datetime | None
    issuer: str | None
    fields_of_work: tuple[str, ...]
    countries: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _Block:
    html: Markup
    text: str


@dataclass(frozen=True, slots=True)
class _Cut:
    """A text cut at numbered marks: ``texts[0]``, value ``marks[0]``, ``texts[1]``, …"""

    texts: tuple[str, ...]  # with ``share``, the long ones Shared
    marks: tuple[int, ...]

    @classmethod
    def of(cls, text: str, pattern: re.Pattern[str], *, share: bool = False) -> _Cut:
        """``text`` cut at ``pattern``'s marks; with ``share``, its long texts Shared."""
        pieces = pattern.split(text)
        texts = [Shared(t) if share and len(t) >= SHARED_FROM else t for t in pieces[0::2]]
        return cls(tuple(texts), tuple(int(n) for n in pieces[1::2]))

    def fragment(self, values: Sequence[str]) -> _Fragment:
        """The text, mark ``n`` replaced by ``values[n]``, as a fragment of a message's
        pieces: its Shared texts apart, the text around them joined."""
        runs: list[str] = []
        pending: list[str] = []
        marks = self.marks
        for n, piece in enumerate(self.texts):
            if type(piece) is Shared:
                runs.append("".join(pending))
                runs.append(piece)
                pending = []
            else:
                pending.append(piece)
            if n < len(marks):
                pending.append(values[marks[n]])
        tail = "".join(pending)
        if not runs:
            return _Fragment(tail, (), "")
        return _Fragment(runs[0], tuple(runs[1:]), tail)


@dataclass(frozen=True, slots=True)
class _Fragment:
    """A block's text in one zone, as pieces: ``head``, then ``middle`` (Shared first and
    last, Shared and plain texts in turn), then ``tail``; no middle if nothing is Shared."""

    head: str
    middle: tuple[str, ...]
    tail: str


class _Pieces:
    """A message part being put together as pieces: plain texts and Shared ones in turn,
    plain first and last (an empty one where two Shared meet)."""

    __slots__ = ("pending", "pieces")

    def __init__(self, first: str) -> None:
        self.pieces: list[str] = []
        self.pending: list[str] = [first]

    def add(self, fragment: _Fragment, then: str) -> None:
        """``fragment``, then the plain text ``then``."""
        self.pending.append(fragment.head)
        if fragment.middle:
            self.pieces.append("".join(self.pending))
            self.pieces.extend(fragment.middle)
            self.pending = [fragment.tail, then]
        else:
            self.pending.append(then)

    def done(self) -> list[str]:
        self.pieces.append("".join(self.pending))
        return self.pieces


@dataclass(slots=True)
class _ZoneFreeBlock:
    """An item's block for every zone: its moments are marks in both parts."""

    html: Markup  # as rendered; what the CSS inlining of each template makes is in ``inlined``
    text: _Cut
    moments: tuple[tuple[datetime, formatting.DateContext], ...]
    view: _ItemView
    inlined: dict[str, _Cut]  # template name -> the block as inlined in that template
    zones: dict[str, tuple[list[str], list[str]]]  # zone -> its moments: text, inlined HTML
    # (template name, or "" for the text, and zone) -> the block there as a fragment
    fragments: dict[tuple[str, str], _Fragment]


class _NotAssembled(Exception):
    """The inlined frame did not hold each block's place once: render whole."""


# Where each kind of message puts its blocks: HTML context name, text context name, and
# whether it takes a list of them.
_PLACES = {"alert": ("item", "text_item", False), "digest": ("items", "text_items", True)}


class EmailRenderer:
    """Renders alerts and digests; build one per process and keep it."""

    def __init__(
        self,
        *,
        taxonomy: Taxonomy,
        base_url: str,
        organisation: str,
        templates: Path | None = None,
        locales: Path | None = None,
        fallback: str | None = FALLBACK_LANGUAGE,
        item_cache_size: int = 4096,
        assemble: bool = True,
    ) -> None:
        self.environments = Environments(
            taxonomy=taxonomy, templates=templates, locales=locales, fallback=fallback
        )
        # What another process needs to build the same renderer (see recipe()).
        self._options: dict[str, Any] = {
            "taxonomy": taxonomy,
            "base_url": base_url,
            "organisation": organisation,
            "templates": templates,
            "locales": locales,
            "fallback": fallback,
            "item_cache_size": item_cache_size,
            "assemble": assemble,
        }
        self.taxonomy = taxonomy
        self.base_url = base_url.rstrip("/")
        self.organisation = organisation
        # Media queries (dark mode, narrow screens) cannot be inlined: the <style> stays.
        self._inliner = css_inline.CSSInliner(keep_style_tags=True, load_remote_stylesheets=False)
        self._cache_size = item_cache_size
        self._lock = threading.Lock()
        # Rendering whole: item blocks per wall-clock time.
        self._blocks: OrderedDict[tuple[object, ...], _Block] = OrderedDict()
        # Assembling: item blocks for every zone.
        self._zone_free: OrderedDict[tuple[object, ...], _ZoneFreeBlock] = OrderedDict()
        self._by_reader: dict[tuple[object, ...], _ZoneFreeBlock] = {}
        # (template name, locale) -> whether assembling gives what rendering whole does;
        # absent until the first message of that kind and locale has been compared.
        self._assembles: dict[tuple[str, str], bool] = {}
        self._assemble_at_all = assemble  # False: always render whole (tests compare)
        self._subjects: dict[tuple[int, tuple[str, ...], str], str] = {}
        # The marks: no item text can hold them, since it cannot know the token.
        token = secrets.token_hex(6)
        self._moment_mark = f"%%publisher-{token}-moment-"
        self._moment_marks = re.compile(re.escape(self._moment_mark) + r"(\d+)%%")
        self._slot_marks = re.compile(rf"<!--publisher-{token}-(\d+)-->")
        self._slot = f"<!--publisher-{token}-{{}}-->"
        self._slot_lists: dict[int, list[Markup]] = {}
        self._probe_start = f"<!--publisher-{token}-start-->"
        self._probe_end = f"<!--publisher-{token}-end-->"
        self._probed = re.compile(
            re.escape(self._probe_start) + "(.*?)" + re.escape(self._probe_end), re.DOTALL
        )

    # -- public API -------------------------------------------------------------------

    def recipe(self) -> dict[str, Any]:
        """Picklable arguments that build an equal renderer in another process."""
        return dict(self._options)

    def render_alert(self, item: StoredItem, *, rule: Rule, default_locale: str) -> RenderedEmail:
        """The message for one new item (frequency ``immediate``)."""
        view = self._zone_free_block(item, rule=rule, default_locale=default_locale).view
        context = self._common(rule, subject=view.title)
        context["view"] = view
        return self._render("alert", rule, [item], context, default_locale, subject=view.title)

    def render_digest(
        self,
        items: Sequence[StoredItem],
        *,
        rule: Rule,
        default_locale: str,
        period_start: datetime,
        period_end: datetime,
    ) -> RenderedEmail:
        """The digest of ``items`` (newest first) for ``period_start``–``period_end``."""
        if not items:
            raise ValueError("a digest needs at least one item: an empty digest is never sent")
        ordered = sorted(items, key=lambda i: (i.published, i.id), reverse=True)
        subject = self.digest_subject(
            len(ordered), _subject_fields(ordered, rule), locale=rule.locale
        )
        context = self._common(rule, subject=subject)
        context.update(count=len(ordered), period_start=period_start, period_end=period_end)
        return self._render("digest", rule, ordered, context, default_locale, subject=subject)

    def digest_subject(self, count: int, fields_of_work: Iterable[str], *, locale: str) -> str:
        """A digest subject, "3 new items: Policing and Elections", plurals from the catalog."""
        key = (count, tuple(fields_of_work), locale)
        subject = self._subjects.get(key)
        if subject is None:
            subject = self._subjects[key] = self._digest_subject(*key)
            if len(self._subjects) > self._cache_size:
                self._subjects.clear()  # a bound; one pass needs a few hundred at most
        return subject

    def _digest_subject(self, count: int, fields_of_work: tuple[str, ...], locale: str) -> str:
        catalog = self.environments.catalog(locale)
        labels = [
            formatting.field_of_work_label(s, taxonomy=self.taxonomy, catalog=catalog)
            for s in fields_of_work
        ]
        t = catalog.translations
        if not labels:
            # TRANSLATORS: the subject of a digest whose items have no field of work.
            return t.ngettext("%(num)d new item", "%(num)d new items", count) % {"num": count}
        # TRANSLATORS: the subject of a digest; fields is a list of fields of work.
        return t.ngettext(
            "%(num)d new item: %(fields)s", "%(num)d new items: %(fields)s", count
        ) % {"num": count, "fields": formatting.format_names(labels, locale=catalog.locale)}

    def catalog(self, locale: str) -> Catalog:
        """The catalog used for ``locale`` (tells whether it is a fallback)."""
        return self.environments.catalog(locale)

    # -- rendering --------------------------------------------------------------------

    def _common(self, rule: Rule, *, subject: str) -> dict[str, Any]:
        catalog = self.environments.catalog(rule.locale)
        return {
            "subject": subject,
            "organisation": self.organisation,
            "base_url": self.base_url,
            "frequency": rule.frequency.value,
            "tz": rule.timezone,
            "rule": formatting.describe_rule(rule, taxonomy=self.taxonomy, catalog=catalog),
            "unsubscribe_url": UNSUBSCRIBE_URL_MARK,
        }

    def _render(
        self,
        name: str,
        rule: Rule,
        items: Sequence[StoredItem],
        context: dict[str, Any],
        default_locale: str,
        *,
        subject: str,
    ) -> RenderedEmail:
        """Message template ``name``, assembled where that gives the same as rendering whole."""
        key = (name, rule.locale)
        verdict = self._assembles.get(key)
        if verdict is False or not self._assemble_at_all:
            return self._whole_email(name, rule, items, context, default_locale, subject)
        try:
            assembled: RenderedEmail | None = self._assemble(
                name, rule, items, context, default_locale, subject=subject
            )
        except _NotAssembled:
            assembled = None
        except Exception:
            if verdict:
                raise
            assembled = None  # a template that needs the zone itself: rendered whole below
        if verdict:
            if assembled is None:  # pragma: no cover - a frame that changed its mind
                return self._whole_email(name, rule, items, context, default_locale, subject)
            return assembled
        html, text = self._render_whole(name, rule, items, context, default_locale)
        same = (
            assembled is not None
            and (assembled.html, assembled.text) == (html, text)
            and not _counts_siblings(html)
        )
        with self._lock:
            self._assembles[key] = same
        if same and assembled is not None:
            return assembled
        log.warning(
            "email template %r in locale %s: assembling it from its parts does not give "
            "what rendering it whole does (a moment or an item block used other than "
            "by showing it, or CSS that selects by siblings); it is rendered whole, "
            "which is slower",
            name,
            rule.locale,
        )
        return RenderedEmail(subject=subject, html=html, text=text, locale=rule.locale)

    def _whole_email(
        self,
        name: str,
        rule: Rule,
        items: Sequence[StoredItem],
        context: dict[str, Any],
        default_locale: str,
        subject: str,
    ) -> RenderedEmail:
        html, text = self._render_whole(name, rule, items, context, default_locale)
        return RenderedEmail(subject=subject, html=html, text=text, locale=rule.locale)

    def _render_whole(
        self,
        name: str,
        rule: Rule,
        items: Sequence[StoredItem],
        context: dict[str, Any],
        default_locale: str,
    ) -> tuple[str, str]:
        """Every template rendered as written, the whole document's CSS inlined."""
        blocks = [self._item_block(i, rule=rule, default_locale=default_locale) for i in items]
        html = _render_with(
            self.environments, name, "html", rule.locale, context, blocks=[b.html for b in blocks]
        )
        text = _render_with(
            self.environments, name, "txt", rule.locale, context, blocks=[b.text for b in blocks]
        )
        return self._inliner.inline(html), text

    def _assemble(
        self,
        name: str,
        rule: Rule,
        items: Sequence[StoredItem],
        context: dict[str, Any],
        default_locale: str,
        *,
        subject: str,
    ) -> RenderedEmail:
        """Both parts as pieces, from zone-free blocks and frames rendered with comments
        standing for them (the HTML frame inlined)."""
        blocks = [self._zone_free_block(i, rule=rule, default_locale=default_locale) for i in items]
        missing = [b for b in blocks if name not in b.inlined]
        if missing:
            self._inline_blocks(name, rule.locale, context, missing)
        slots = self._slots(len(blocks))
        frame = self._inliner.inline(
            _render_with(self.environments, name, "html", rule.locale, context, blocks=slots)
        )
        text_frame = _render_with(
            self.environments, name, "txt", rule.locale, context, blocks=slots
        )
        cut = _Cut.of(frame, self._slot_marks)
        text_cut = _Cut.of(text_frame, self._slot_marks)
        order = list(range(len(blocks)))
        if sorted(cut.marks) != order or sorted(text_cut.marks) != order:
            raise _NotAssembled
        html = _Pieces(cut.texts[0])
        for n, slot in enumerate(cut.marks, 1):
            html.add(self._fragment(blocks[slot], name, rule), cut.texts[n])
        text = _Pieces(text_cut.texts[0])
        for n, slot in enumerate(text_cut.marks, 1):
            text.add(self._fragment(blocks[slot], "", rule), text_cut.texts[n])
        html_pieces, text_pieces = html.done(), text.done()
        return RenderedEmail(
            subject=subject,
            html="".join(html_pieces),
            text="".join(text_pieces),
            locale=rule.locale,
            html_pieces=tuple(html_pieces),
            text_pieces=tuple(text_pieces),
        )

    def _fragment(self, block: _ZoneFreeBlock, name: str, rule: Rule) -> _Fragment:
        """The block in the rule's zone as inlined in template ``name`` ("": its text)."""
        key = (name, rule.timezone)
        fragment = block.fragments.get(key)
        if fragment is None:
            text_moments, html_moments = self._zone_moments(block, rule)
            if name:
                fragment = block.inlined[name].fragment(html_moments)
            else:
                fragment = block.text.fragment(text_moments)
            block.fragments[key] = fragment
        return fragment

    def _slots(self, count: int) -> list[Markup]:
        """The comments standing for ``count`` blocks in a frame, made once per count."""
        slots = self._slot_lists.get(count)
        if slots is None:
            slots = [Markup(self._slot.format(n)) for n in range(count)]  # noqa: S704
            self._slot_lists[count] = slots
        return slots

    def _inline_blocks(
        self, name: str, locale: str, context: dict[str, Any], blocks: list[_ZoneFreeBlock]
    ) -> None:
        """Inline each block's CSS in template ``name``, where the block would stand."""
        start, end = Markup(self._probe_start), Markup(self._probe_end)  # noqa: S704
        # An alert holds one block, a digest holds them all: probe accordingly.
        groups = [blocks] if _PLACES[name][2] else [[b] for b in blocks]
        for group in groups:
            wrapped = [start + b.html + end for b in group]
            inlined = self._inliner.inline(
                _render_with(self.environments, name, "html", locale, context, blocks=wrapped)
            )
            found = self._probed.findall(inlined)
            if len(found) != len(group):
                raise _NotAssembled
            for block, html in zip(group, found, strict=True):
                block.inlined[name] = _Cut.of(html, self._moment_marks, share=True)

    def _zone_moments(self, block: _ZoneFreeBlock, rule: Rule) -> tuple[list[str], list[str]]:
        """The block's moments in the rule's zone (its locale is the block's): as text,
        and as the CSS inliner writes them."""
        shown = block.zones.get(rule.timezone)
        if shown is None:
            locale = self.environments.catalog(rule.locale).locale
            texts = [
                formatting.format_moment(value, locale=locale, tz=rule.timezone, context=context)
                for value, context in block.moments
            ]
            shown = block.zones[rule.timezone] = (texts, [_as_inliner_writes(t) for t in texts])
        return shown

    def _zone_free_block(
        self, item: StoredItem, *, rule: Rule, default_locale: str
    ) -> _ZoneFreeBlock:
        # The translation shown depends only on the item's languages and the reader's:
        # looked up by them first, without choosing it again (a digest shows hundreds).
        reader = (
            item.id,
            item.changed_at,
            *item.translations,
            "",
            rule.locale,
            rule.fallback_locales,
            default_locale,
        )
        known = self._by_reader.get(reader)
        if known is not None:
            return known
        chosen, foreign = choose_translation(item, rule, default_locale=default_locale)
        # The item's version is part of the key: an edited item is rendered afresh.
        key = (item.id, item.changed_at, rule.locale, chosen.lang, foreign)
        with self._lock:
            cached = self._zone_free.get(key)
            if cached is not None:
                self._zone_free.move_to_end(key)
                self._remember(reader, cached)
                return cached
        view = self._view(item, chosen.lang, foreign=foreign)
        env = self.environments.get(rule.locale)
        zone = DeferredZone(self._moment_mark)
        context = {"item": view, "tz": zone}
        html = Markup(env.get_template("email/_item.html").render(context))  # noqa: S704
        # Stripped: the message templates place blank lines and separators themselves.
        text = env.get_template("email/_item.txt").render(context).strip("\n")
        block = _ZoneFreeBlock(
            html=html,
            text=_Cut.of(text, self._moment_marks, share=True),
            moments=tuple(zone.moments),
            view=view,
            inlined={},
            zones={},
            fragments={},
        )
        with self._lock:
            self._zone_free[key] = block
            while len(self._zone_free) > self._cache_size:
                self._zone_free.popitem(last=False)
            self._remember(reader, block)
        return block

    def _remember(self, reader: tuple[object, ...], block: _ZoneFreeBlock) -> None:
        """Keep ``block`` for these readers (lock held); all are let go past a bound."""
        if len(self._by_reader) >= 4 * self._cache_size:
            self._by_reader.clear()
        self._by_reader[reader] = block

    def _item_block(self, item: StoredItem, *, rule: Rule, default_locale: str) -> _Block:
        """The block as rendered for the rule's zone (rendering whole)."""
        chosen, foreign = choose_translation(item, rule, default_locale=default_locale)
        # The zone enters only through the moments the block shows (``moment(tz)``
        # prints a local date and time, never a zone name): zones that read the same
        # wall-clock times share the block.
        key = (
            item.id,
            item.changed_at,
            rule.locale,
            chosen.lang,
            foreign,
            *_wall_clock(rule.timezone, item.published, item.updated),
        )
        with self._lock:
            cached = self._blocks.get(key)
            if cached is not None:
                self._blocks.move_to_end(key)
                return cached
        view = self._view(item, chosen.lang, foreign=foreign)
        env = self.environments.get(rule.locale)
        context = {"item": view, "tz": rule.timezone}
        block = _Block(
            html=Markup(env.get_template("email/_item.html").render(context)),  # noqa: S704
            text=env.get_template("email/_item.txt").render(context).strip("\n"),
        )
        with self._lock:
            self._blocks[key] = block
            while len(self._blocks) > self._cache_size:
                self._blocks.popitem(last=False)
        return block

    def _view(self, item: StoredItem, lang: str, *, foreign: bool) -> _ItemView:
        text = item.translations[lang]
        # Only web links: whatever else reached the store never becomes a link to click.
        links = (web_link(u) for u in (text.url, *(t.url for t in item.translations.values())))
        url = next((u for u in links if u is not None), f"{self.base_url}/")
        return _ItemView(
            id=item.id,
            title=_defuse(" ".join(text.title.split())),
            summary=_defuse(text.summary.strip()),
            url=_defuse(url),
            lang=lang.replace("_", "-"),
            dir=_direction(lang),
            foreign=foreign,
            published=item.published,
            updated=item.updated,
            issuer=item.issuer,
            fields_of_work=item.fields_of_work,
            countries=item.countries,
        )


def _render_with(
    environments: Environments,
    name: str,
    suffix: str,
    locale: str,
    context: dict[str, Any],
    *,
    blocks: Sequence[str],
) -> str:
    """Message template ``name`` (``html`` or ``txt``) with ``blocks`` in their place."""
    html_name, text_name, many = _PLACES[name]
    placed = {html_name if suffix == "html" else text_name: blocks if many else blocks[0]}
    return environments.get(locale).get_template(f"email/{name}.{suffix}").render(context, **placed)


def _subject_fields(items: Sequence[StoredItem], rule: Rule) -> list[str]:
    """The fields of work most items share, restricted to the rule's when it names some."""
    counts: Counter[str] = Counter()
    for item in items:
        for slug in dict.fromkeys(item.fields_of_work):
            if not rule.fields_of_work or slug in rule.fields_of_work:
                counts[slug] += 1
    # Counter.most_common keeps first-seen order among equal counts.
    return [slug for slug, _ in counts.most_common(SUBJECT_FIELDS)]


def _wall_clock(tz: str, *moments: datetime | None) -> tuple[datetime | None, ...]:
    """The local date and time of each moment in zone ``tz`` (``None`` stays ``None``)."""
    zone_info = formatting.zone(tz)
    local: list[datetime | None] = []
    for moment in moments:
        try:
            local.append(None if moment is None else moment.astimezone(zone_info))
        except OverflowError:  # shown in UTC instead (formatting.format_moment)
            local.append(moment)
    # Naive: two zones at the same wall-clock time compare equal.
    return tuple(None if m is None else m.replace(tzinfo=None) for m in local)


def _direction(lang: str) -> str:
    try:
        return str(Locale.parse(lang).text_direction)
    except (ValueError, LookupError):
        return "ltr"


def _defuse(text: str) -> str:
    """Untrusted text must not carry a personal marker for the caller to fill in."""
    for mark in PERSONAL_MARKS:
        text = text.replace(mark, mark.replace("%%", "%\u2060%"))
    return text


# CSS that looks at an element's siblings or position among them: a block inlined in
# one message could then need other styles in another. Found in a <style> element's text.
_STYLE_ELEMENTS = re.compile(r"<style\b[^>]*>(.*?)</style>", re.DOTALL | re.IGNORECASE)
_CSS_COMMENTS = re.compile(r"/\*.*?\*/", re.DOTALL)
_SIBLING_SELECTORS = re.compile(
    r"[+~]|:(?:first|last|nth|only)-|:(?:empty|has|not|is|where)\b", re.IGNORECASE
)


def _counts_siblings(html: str) -> bool:
    """Whether the document's stylesheets may select by siblings (see above)."""
    return any(
        _SIBLING_SELECTORS.search(_CSS_COMMENTS.sub("", css))
        for css in _STYLE_ELEMENTS.findall(html)
    )


def _as_inliner_writes(text: str) -> str:
    """``text`` as the CSS inliner writes a text node (html5ever's serializer, which
    follows the HTML standard's "escaping a string")."""
    return (
        text.replace("&", "&amp;")
        .replace("\u00a0", "&nbsp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
    )
