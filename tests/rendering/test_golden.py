"""Whole rendered emails, per locale, diffed against committed golden files.

``UPDATE_GOLDEN=1 python -m pytest tests/rendering`` rewrites them; review the diff.
Nothing here reads the clock: items, periods and rules carry fixed datetimes.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from publisher.delivery.message import MessageTemplate, make_message_id
from publisher.rendering import EmailRenderer, RenderedEmail
from publisher.settings import Settings
from publisher.store.items import StoredItem
from tests.rendering.conftest import make_rule

GOLDEN = Path(__file__).parent / "golden"
PERIOD = (datetime(2024, 12, 5, 3, 0, tzinfo=UTC), datetime(2024, 12, 6, 3, 0, tzinfo=UTC))


def _render(
    kind: str, locale: str, renderer: EmailRenderer, items: list[StoredItem]
) -> RenderedEmail:
    rule = make_rule(locale, exclude_countries=frozenset({"RU"}))
    if kind == "alert":
        return renderer.render_alert(items[0], rule=rule, default_locale="en")
    return renderer.render_digest(
        items, rule=rule, default_locale="en", period_start=PERIOD[0], period_end=PERIOD[1]
    )


@pytest.mark.parametrize("locale", Settings().locales)
@pytest.mark.parametrize("kind", ["alert", "digest"])
def test_golden(
    kind: str,
    locale: str,
    renderer: EmailRenderer,
    workshop: StoredItem,
    english_only: StoredItem,
) -> None:
    """An alert and a digest in each of the nine languages match their golden subject, HTML,
    text, and the whole message as sent: headers, MIME structure and both encoded parts."""
    email = _render(kind, locale, renderer, [workshop, english_only])
    parts = {"subject.txt": email.subject + "\n", "html": email.html, "txt": email.text}
    for suffix, actual in parts.items():
        path = GOLDEN / f"{kind}.{locale}.{suffix}"
        if os.environ.get("UPDATE_GOLDEN") == "1":
            path.write_text(actual, encoding="utf-8")
        assert path.read_text(encoding="utf-8") == actual, f"{path.name} differs"
    message = MessageTemplate.build(
        email,
        sender="OSCE News <news@example.org>",
        reply_to="info@example.org",
        list_id="news",
        list_name="OSCE News",
        domain="example.org",
        date=PERIOD[1],
    ).personalize(
        recipient="analyst@example.org",
        recipient_name="A. Analyst",
        message_id=make_message_id(key=f"{kind}/{locale}", domain="example.org"),
        unsubscribe_url="https://news.example.org/u/TOKEN",
        unsubscribe_mailto="mailto:unsubscribe@example.org?subject=unsubscribe%20TOKEN",
    )
    path = GOLDEN / f"{kind}.{locale}.eml"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.write_bytes(message)
    assert path.read_bytes() == message, f"{path.name} differs"
