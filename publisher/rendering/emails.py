"""Localized emails: an alert for one item, a digest for several; HTML and plain text.

Rendering is per rule, not per recipient: subscribers who share a rule get the same
bytes except for their personal parts, which are rendered as the markers below for the
caller to replace per recipient (outside HTML, so the replacement is a byte substitution).
Within one renderer each item's block is rendered once per (item version, locale, time
zone, language shown) and reused by every rule that includes it.

Only the words and the formatting happen here; MIME, headers and sending do not.
"""

from __future__ import annotations

import threading
from collections import Counter, OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
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
from publisher.rendering.environment import Environments
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


@dataclass(frozen=True, slots=True)
class RenderedEmail:
    """One message's parts for every subscriber of a rule, personal parts as markers."""

    subject: str
    html: str
    text: str
    locale: str  # the subscriber's locale, as the rule gives it

    def personalized(self, *, unsubscribe_url: str) -> RenderedEmail:
        """A copy with the personal parts filled in (previews; bulk sending substitutes bytes)."""
        return replace(
            self,
            html=self.html.replace(UNSUBSCRIBE_URL_MARK, html_escape(unsubscribe_url)),
            text=self.text.replace(UNSUBSCRIBE_URL_MARK, unsubscribe_url),
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
        }
        self.taxonomy = taxonomy
        self.base_url = base_url.rstrip("/")
        self.organisation = organisation
        # Media queries (dark mode, narrow screens) cannot be inlined: the <style> stays.
        self._inliner = css_inline.CSSInliner(keep_style_tags=True, load_remote_stylesheets=False)
        self._blocks: OrderedDict[tuple[object, ...], tuple[_Block, _ItemView]] = OrderedDict()
        self._blocks_max = item_cache_size
        self._blocks_lock = threading.Lock()
        self._subjects: dict[tuple[int, tuple[str, ...], str], str] = {}

    # -- public API -------------------------------------------------------------------

    def recipe(self) -> dict[str, Any]:
        """Picklable arguments that build an equal renderer in another process."""
        return dict(self._options)

    def render_alert(self, item: StoredItem, *, rule: Rule, default_locale: str) -> RenderedEmail:
        """The message for one new item (frequency ``immediate``)."""
        block, view = self._item_block(item, rule=rule, default_locale=default_locale)
        context = self._common(rule, subject=view.title)
        context.update(item=block.html, view=view)
        html, text = self._render("alert", rule.locale, context, text_item=block.text)
        return RenderedEmail(subject=view.title, html=html, text=text, locale=rule.locale)

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
        blocks = [self._item_block(i, rule=rule, default_locale=default_locale)[0] for i in ordered]
        subject = self.digest_subject(
            len(ordered), _subject_fields(ordered, rule), locale=rule.locale
        )
        context = self._common(rule, subject=subject)
        context.update(
            items=[b.html for b in blocks],
            count=len(ordered),
            period_start=period_start,
            period_end=period_end,
        )
        html, text = self._render(
            "digest", rule.locale, context, text_items=[b.text for b in blocks]
        )
        return RenderedEmail(subject=subject, html=html, text=text, locale=rule.locale)

    def digest_subject(self, count: int, fields_of_work: Iterable[str], *, locale: str) -> str:
        """A digest subject, "3 new items: Policing and Elections", plurals from the catalog."""
        key = (count, tuple(fields_of_work), locale)
        subject = self._subjects.get(key)
        if subject is None:
            subject = self._subjects[key] = self._digest_subject(*key)
            if len(self._subjects) > self._blocks_max:
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
        self, name: str, locale: str, context: dict[str, Any], **text_context: Any
    ) -> tuple[str, str]:
        env = self.environments.get(locale)
        html = env.get_template(f"email/{name}.html").render(context)
        text = env.get_template(f"email/{name}.txt").render(context, **text_context)
        return self._inliner.inline(html), text

    def _item_block(
        self, item: StoredItem, *, rule: Rule, default_locale: str
    ) -> tuple[_Block, _ItemView]:
        chosen, foreign = choose_translation(item, rule, default_locale=default_locale)
        # The item's version is part of the key: an edited item is rendered afresh. The
        # zone enters only through the moments the block shows (``moment(tz)`` prints a
        # local date and time, never a zone name): zones that read the same wall-clock
        # times share the block.
        key = (
            item.id,
            item.changed_at,
            rule.locale,
            chosen.lang,
            foreign,
            *_wall_clock(rule.timezone, item.published, item.updated),
        )
        with self._blocks_lock:
            cached = self._blocks.get(key)
            if cached is not None:
                self._blocks.move_to_end(key)
                return cached
        view = self._view(item, chosen.lang, foreign=foreign)
        env = self.environments.get(rule.locale)
        context = {"item": view, "tz": rule.timezone}
        block = _Block(
            html=Markup(env.get_template("email/_item.html").render(context)),  # noqa: S704
            # Stripped: the message templates place blank lines and separators themselves.
            text=env.get_template("email/_item.txt").render(context).strip("\n"),
        )
        with self._blocks_lock:
            self._blocks[key] = (block, view)
            while len(self._blocks) > self._blocks_max:
                self._blocks.popitem(last=False)
        return block, view

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
