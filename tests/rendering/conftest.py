"""Items, rules and a renderer for the rendering tests: fixed data, no clock, no store."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, time

import pytest

from publisher.rendering import EmailRenderer
from publisher.store.items import StoredItem, StoredTranslation
from publisher.subscriptions.model import Format, Frequency, Rule
from publisher.taxonomy import load_taxonomy

PUBLISHED = datetime(2024, 12, 6, 9, 30, tzinfo=UTC)
SEEN = datetime(2024, 12, 6, 10, 0, tzinfo=UTC)


def translation(lang: str, title: str, summary: str, url: str | None) -> StoredTranslation:
    return StoredTranslation(
        lang=lang,
        title=title,
        summary=summary,
        body_html="<p>…</p>",
        url=url,
        first_seen=SEEN,
        changed_at=SEEN,
    )


def make_item(
    item_id: str,
    *,
    published: datetime = PUBLISHED,
    issuer: str | None = "project-co-ordinator-in-uzbekistan",
    fields_of_work: tuple[str, ...] = ("policing", "cyber-ict-security"),
    countries: tuple[str, ...] = ("UZ",),
    texts: tuple[StoredTranslation, ...] = (),
) -> StoredItem:
    return StoredItem(
        id=item_id,
        source="newsroom",
        published=published,
        updated=None,
        issuer=issuer,
        fields_of_work=fields_of_work,
        countries=countries,
        first_seen=SEEN,
        changed_at=SEEN,
        translations={t.lang: t for t in texts}
        or {"en": translation("en", f"Item {item_id}", "Summary.", None)},
    )


def make_rule(locale: str = "en", **changes: object) -> Rule:
    rule = Rule(
        fields_of_work=frozenset({"policing", "cyber-ict-security"}),
        countries=frozenset({"KZ", "KG", "TJ", "TM", "UZ"}),
        countries_as_written=("central-asia",),
        exclude_fields_of_work=frozenset(),
        exclude_countries=frozenset(),
        locale=locale,
        fallback_locales=(),
        timezone="Asia/Tashkent",
        frequency=Frequency.DAILY,
        send_at=time(8, 0),
        weekday=0,
        format=Format.HTML,
    )
    return replace(rule, **changes)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def renderer() -> EmailRenderer:
    """One renderer for the session, as a process keeps one."""
    return EmailRenderer(
        taxonomy=load_taxonomy(),
        base_url="https://news.example.org",
        organisation="OSCE News",
    )


@pytest.fixture
def workshop() -> StoredItem:
    """The seed's item, in English and Russian."""
    return make_item(
        "2024-12-06-tashkent-workshop",
        countries=("UZ", "KZ"),
        texts=(
            translation(
                "en",
                "Cybercrime & e-evidence: workshop for investigators in Tashkent",
                "Thirty investigators and prosecutors from Central Asia practised "
                "collecting and sharing electronic evidence.\n\n"
                "The workshop was organized with the Ministry of Internal Affairs.",
                "https://www.example.org/en/news/tashkent-workshop",
            ),
            translation(
                "ru",
                "Киберпреступность и электронные доказательства: семинар для следователей в "
                "Ташкенте",
                "Тридцать следователей и прокуроров из Центральной Азии отработали сбор и "
                "обмен электронными доказательствами.\n\n"
                "Семинар организован совместно с Министерством внутренних дел.",
                "https://www.example.org/ru/news/tashkent-workshop",
            ),
        ),
    )


@pytest.fixture
def english_only() -> StoredItem:
    """An item published in English only: a Russian reader gets it with a note."""
    return make_item(
        "2024-12-05-border-guards",
        published=datetime(2024, 12, 5, 14, 0, tzinfo=UTC),
        issuer="programme-office-in-bishkek",
        fields_of_work=("border-management", "policing"),
        countries=("KG",),
        texts=(
            translation(
                "en",
                "Border guards in Kyrgyzstan trained on risk analysis",
                "A week-long course in Bishkek for border guards from Kyrgyzstan.",
                "https://www.example.org/en/news/border-guards",
            ),
        ),
    )
