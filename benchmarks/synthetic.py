"""Synthetic data for the benchmarks: a realistic ``subscriptions.yaml`` of any size, and
news items as a source yields them.

The mix follows what an administrator writes: most entries say little more than an
address and a language, and lean on ``defaults``; some follow a few fields of work or
countries; a few exclude, choose an hour, a weekday or plain text. All nine locales,
dozens of time zones (each locale's own), every frequency, named regions and groups.
The same ``seed`` gives the same file.

Use ``subscriptions_yaml(n)`` for the text or ``write_subscriptions(directory, n)`` for
a file, and ``items(taxonomy, per_day=…, days=…, end=…)`` for items to store.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from publisher.items import FetchedItem, Translation
from publisher.taxonomy import Taxonomy

LOCALES = ("en", "fr", "de", "it", "ru", "es", "uk", "tr", "ar")
# How often each locale is chosen, and the time zones its readers live in.
LOCALE_WEIGHTS = (30, 10, 10, 6, 20, 8, 6, 5, 5)
TIME_ZONES: dict[str, tuple[str, ...]] = {
    "en": ("Europe/Vienna", "Europe/London", "America/New_York", "America/Chicago",
           "America/Toronto", "Europe/Dublin", "Australia/Sydney", "Asia/Tokyo",
           "Europe/Warsaw", "Europe/Stockholm", "UTC"),
    "fr": ("Europe/Paris", "Europe/Brussels", "Europe/Zurich", "Africa/Tunis",
           "Africa/Algiers", "Africa/Casablanca", "America/Montreal"),
    "de": ("Europe/Berlin", "Europe/Vienna", "Europe/Zurich", "Europe/Luxembourg"),
    "it": ("Europe/Rome", "Europe/San_Marino", "Europe/Vatican", "Europe/Zurich"),
    "ru": ("Europe/Moscow", "Asia/Tashkent", "Asia/Almaty", "Asia/Bishkek",
           "Asia/Dushanbe", "Asia/Ashgabat", "Europe/Minsk", "Asia/Yekaterinburg",
           "Asia/Novosibirsk", "Asia/Vladivostok", "Europe/Chisinau", "Asia/Baku"),
    "es": ("Europe/Madrid", "America/Mexico_City", "America/Bogota", "Atlantic/Canary"),
    "uk": ("Europe/Kyiv", "Europe/Warsaw", "Europe/Berlin"),
    "tr": ("Europe/Istanbul", "Europe/Berlin", "Asia/Nicosia"),
    "ar": ("Africa/Cairo", "Asia/Amman", "Africa/Tunis", "Africa/Algiers",
           "Africa/Casablanca", "Asia/Dubai"),
}  # fmt: skip
FIELDS_OF_WORK = (
    "policing", "elections", "human-rights", "media-freedom-and-development",
    "gender-equality", "border-management", "countering-terrorism", "cyber-ict-security",
    "environmental-activities", "national-minority-issues", "arms-control", "democratization",
    "combating-trafficking-in-human-beings", "conflict-prevention-and-resolution",
    "rule-of-law", "youth", "migration", "good-governance", "economic-activities",
)  # fmt: skip
# Country codes and region names a subscriber follows, by locale.
PLACES: dict[str, tuple[str, ...]] = {
    "en": ("south-eastern-europe", "UA", "MD", "GE", "AM", "AZ", "RS", "BA", "XK", "MK",
           "AL", "ME", "central-asia", "south-caucasus", "US", "CA", "GB"),
    "fr": ("mediterranean-partners", "FR", "BE", "CH", "TN", "MA", "DZ", "MD"),
    "de": ("DE", "AT", "CH", "south-eastern-europe", "UA", "BA", "XK"),
    "it": ("IT", "SM", "VA", "AL", "ME", "south-eastern-europe"),
    "ru": ("central-asia", "UZ", "KZ", "KG", "TJ", "TM", "RU", "BY", "MD", "AM", "AZ",
           "south-caucasus", "eastern-europe"),
    "es": ("ES", "AD", "mediterranean-partners", "MA"),
    "uk": ("UA", "MD", "eastern-europe", "black-sea"),
    "tr": ("TR", "black-sea", "south-caucasus", "AZ", "GE"),
    "ar": ("mediterranean-partners", "EG", "JO", "TN", "MA", "DZ", "IL"),
}  # fmt: skip
FALLBACKS: dict[str, tuple[str, ...]] = {
    "uk": ("ru", "en"), "tr": ("en",), "ar": ("fr", "en"), "it": ("en",), "ru": ("en",),
    "fr": ("en",), "de": ("en",), "es": ("en",),
}  # fmt: skip
SEND_TIMES = ("06:30", "07:00", "07:30", "08:00", "09:00", "12:00", "17:00", "18:00", "20:00")
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
DOMAINS = ("example.org", "example.com", "example.net")
FIRST = (
    "anna", "ivan", "claire", "jonas", "olena", "karim", "lucia", "marco", "aigerim",
    "timur", "elif", "sara", "david", "nino", "ahmed", "maria", "pavel", "jean",
)  # fmt: skip
LAST = (
    "smith", "petrova", "martin", "becker", "kovalenko", "haddad", "fernandez", "rossi",
    "nurlanova", "karimov", "yilmaz", "jensen", "novak", "beridze", "hassan", "ionescu",
)  # fmt: skip

HEADER = """\
# Synthetic subscriptions for the benchmarks (benchmarks/synthetic.py), {n} addresses.
defaults:
  locale: en
  timezone: Europe/Vienna
  frequency: daily
  send_at: "08:00"
  weekday: monday
  format: html
regions:
  central-asia: [KZ, KG, TJ, TM, UZ]
  black-sea: [BG, GE, MD, RO, TR, UA]
"""


@dataclass(frozen=True, slots=True)
class Mix:
    """The share of entries (0..1) that say each thing; the rest take the defaults."""

    in_group: float = 0.05
    name: float = 0.3
    explicit_en: float = 0.2
    fallback: float = 0.3
    timezone: float = 0.8
    fields_of_work: float = 0.6
    countries: float = 0.45
    exclude_fields_of_work: float = 0.04
    exclude_countries: float = 0.05
    immediate: float = 0.15
    weekly: float = 0.25
    explicit_daily: float = 0.1
    send_at: float = 0.4
    weekday: float = 0.7  # of weekly entries
    text_format: float = 0.1
    block_lists: float = 0.15  # lists written one item a line rather than [a, b]


def subscriptions_yaml(n: int, *, seed: int = 0, mix: Mix | None = None) -> str:
    """A valid ``subscriptions.yaml`` with ``n`` addresses (groups included)."""
    rng = random.Random(seed)
    mix = mix or Mix()
    grouped = round(n * mix.in_group)
    parts = [HEADER.format(n=n), "groups:\n"]
    made = 0
    group = 0
    while made < grouped:
        size = min(rng.randint(5, 50), grouped - made)
        parts.append(_group(rng, mix, group, range(made, made + size)))
        made += size
        group += 1
    if not group:
        parts[-1] = "groups: []\n"
    parts.append("subscribers:\n")
    parts.extend(_subscriber(rng, mix, i) for i in range(made, n))
    return "".join(parts)


def write_subscriptions(directory: Path, n: int, *, seed: int = 0, mix: Mix | None = None) -> Path:
    """Write ``subscriptions.yaml`` with ``n`` addresses into ``directory``."""
    path = directory / "subscriptions.yaml"
    path.write_text(subscriptions_yaml(n, seed=seed, mix=mix), encoding="utf-8")
    return path


def _address(rng: random.Random, i: int) -> str:
    return f"{rng.choice(FIRST)}.{rng.choice(LAST)}{i}@{rng.choice(DOMAINS)}"


def _group(rng: random.Random, mix: Mix, number: int, members: range) -> str:
    locale = _locale(rng)
    lines = [f"  - name: team-{number}\n", "    emails:\n"]
    lines.extend(f"      - {_address(rng, i)}\n" for i in members)
    lines.extend(_rule(rng, mix, locale, "    "))
    return "".join(lines)


def _subscriber(rng: random.Random, mix: Mix, i: int) -> str:
    locale = _locale(rng)
    lines = [f"  - email: {_address(rng, i)}\n"]
    if rng.random() < mix.name:
        lines.append(f"    name: {rng.choice(FIRST).title()} {rng.choice(LAST).title()}\n")
    lines.extend(_rule(rng, mix, locale, "    "))
    return "".join(lines)


def _locale(rng: random.Random) -> str:
    return rng.choices(LOCALES, LOCALE_WEIGHTS)[0]


def _rule(rng: random.Random, mix: Mix, locale: str, indent: str) -> list[str]:
    lines = []
    if locale != "en" or rng.random() < mix.explicit_en:
        lines.append(f"locale: {locale}")
    if locale in FALLBACKS and rng.random() < mix.fallback:
        lines.append(_list(rng, mix, "fallback_locales", FALLBACKS[locale], indent))
    if rng.random() < mix.timezone:
        lines.append(f"timezone: {rng.choice(TIME_ZONES[locale])}")
    if rng.random() < mix.fields_of_work:
        chosen = rng.sample(FIELDS_OF_WORK[:10], rng.randint(1, 3))
        lines.append(_list(rng, mix, "fields_of_work", chosen, indent))
    if rng.random() < mix.countries:
        chosen = rng.sample(PLACES[locale], rng.randint(1, 2))
        lines.append(_list(rng, mix, "countries", chosen, indent))
    if rng.random() < mix.exclude_fields_of_work:
        chosen = rng.sample(FIELDS_OF_WORK[10:], 1)
        lines.append(_list(rng, mix, "exclude_fields_of_work", chosen, indent))
    if rng.random() < mix.exclude_countries:
        chosen = ["RU", "BY"][: rng.randint(1, 2)]
        lines.append(_list(rng, mix, "exclude_countries", chosen, indent))
    draw = rng.random()
    if draw < mix.immediate:
        lines.append("frequency: immediate")
    elif draw < mix.immediate + mix.weekly:
        lines.append("frequency: weekly")
        if rng.random() < mix.weekday:
            lines.append(f"weekday: {rng.choice(WEEKDAYS)}")
    elif rng.random() < mix.explicit_daily:
        lines.append("frequency: daily")
    if rng.random() < mix.send_at:
        lines.append(f'send_at: "{rng.choice(SEND_TIMES)}"')
    if rng.random() < mix.text_format:
        lines.append("format: text")
    return [f"{indent}{line}\n" for line in lines]


def _list(rng: random.Random, mix: Mix, key: str, items: Sequence[str], indent: str) -> str:
    if rng.random() < mix.block_lists:
        return f"{key}:" + "".join(f"\n{indent}  - {item}" for item in items)
    return f"{key}: [{', '.join(items)}]"


# -- items ------------------------------------------------------------------------------

# Words of news prose in each locale's own script, so titles, summaries and bodies have
# the byte lengths of real text (Cyrillic and Arabic take two bytes a letter in UTF-8).
# The sentences they make are word salad: nothing reads them, only their size matters.
WORDS: dict[str, tuple[str, ...]] = {
    "en": ("mission", "workshop", "participants", "election", "officials", "training",
           "border", "police", "community", "rights", "media", "journalists", "youth",
           "co-operation", "security", "dialogue", "government", "civil", "society",
           "experts", "regional", "national", "support", "project", "the", "of", "and",
           "in", "for", "with", "on", "to", "a", "local", "review", "report", "meeting"),
    "fr": ("mission", "atelier", "participants", "élection", "responsables", "formation",
           "frontière", "police", "communauté", "droits", "médias", "journalistes",
           "jeunesse", "coopération", "sécurité", "dialogue", "gouvernement", "société",
           "civile", "experts", "régional", "national", "soutien", "projet", "le", "la",
           "les", "de", "des", "et", "dans", "pour", "avec", "sur", "réunion", "rapport"),
    "de": ("Mission", "Workshop", "Teilnehmende", "Wahl", "Beamte", "Schulung", "Grenze",
           "Polizei", "Gemeinschaft", "Rechte", "Medien", "Journalisten", "Jugend",
           "Zusammenarbeit", "Sicherheit", "Dialog", "Regierung", "Zivilgesellschaft",
           "Fachleute", "regionale", "nationale", "Unterstützung", "Projekt", "der", "die",
           "das", "und", "in", "für", "mit", "über", "zur", "Treffen", "Bericht"),
    "it": ("missione", "seminario", "partecipanti", "elezioni", "funzionari", "formazione",
           "frontiera", "polizia", "comunità", "diritti", "media", "giornalisti",
           "giovani", "cooperazione", "sicurezza", "dialogo", "governo", "società",
           "civile", "esperti", "regionale", "nazionale", "sostegno", "progetto", "il",
           "la", "di", "e", "per", "con", "sulla", "nella", "riunione", "rapporto"),
    "ru": ("миссия", "семинар", "участники", "выборы", "должностные", "лица", "обучение",
           "граница", "полиция", "сообщество", "права", "СМИ", "журналисты", "молодёжь",
           "сотрудничество", "безопасность", "диалог", "правительство", "гражданское",
           "общество", "эксперты", "региональный", "национальный", "поддержка", "проект",
           "и", "в", "для", "с", "по", "на", "встреча", "доклад", "ОБСЕ"),
    "es": ("misión", "taller", "participantes", "elecciones", "funcionarios",
           "formación", "frontera", "policía", "comunidad", "derechos", "medios",
           "periodistas", "juventud", "cooperación", "seguridad", "diálogo", "gobierno",
           "sociedad", "civil", "expertos", "regional", "nacional", "apoyo", "proyecto",
           "el", "la", "de", "y", "en", "para", "con", "sobre", "reunión", "informe"),
    "uk": ("місія", "семінар", "учасники", "вибори", "посадовці", "навчання", "кордон",
           "поліція", "громада", "права", "медіа", "журналісти", "молодь", "співпраця",
           "безпека", "діалог", "уряд", "громадянське", "суспільство", "експерти",
           "регіональний", "національний", "підтримка", "проєкт", "і", "в", "для", "з",
           "щодо", "на", "зустріч", "доповідь", "ОБСЄ"),
    "tr": ("misyon", "çalıştay", "katılımcılar", "seçim", "yetkililer", "eğitim", "sınır",
           "polis", "topluluk", "haklar", "medya", "gazeteciler", "gençlik", "işbirliği",
           "güvenlik", "diyalog", "hükümet", "sivil", "toplum", "uzmanlar", "bölgesel",
           "ulusal", "destek", "proje", "ve", "ile", "için", "üzerine", "toplantı", "rapor"),
    "ar": ("البعثة", "ورشة", "المشاركون", "الانتخابات", "المسؤولون", "التدريب", "الحدود",
           "الشرطة", "المجتمع", "الحقوق", "الإعلام", "الصحفيون", "الشباب", "التعاون",
           "الأمن", "الحوار", "الحكومة", "المدني", "الخبراء", "الإقليمي", "الوطني", "الدعم",
           "المشروع", "في", "من", "إلى", "على", "مع", "اجتماع", "تقرير", "منظمة"),
}  # fmt: skip
# The language an item is first written in, and how often.
ITEM_LANGUAGE_WEIGHTS = {"en": 70, "ru": 12, "fr": 5, "de": 4, "uk": 3, "ar": 2, "tr": 2,
                         "es": 1, "it": 1}  # fmt: skip
# How often a translation into each other language exists.
TRANSLATION_WEIGHTS = {"en": 40, "ru": 25, "fr": 10, "de": 8, "uk": 6, "ar": 3, "tr": 3,
                       "es": 3, "it": 2}  # fmt: skip


def items(
    taxonomy: Taxonomy,
    *,
    per_day: int,
    days: int,
    end: datetime,
    seed: int = 0,
    key_prefix: str = "synthetic",
) -> list[FetchedItem]:
    """``per_day`` items a day for the ``days`` days before ``end``, as a source yields them.

    Each has 1 to 3 translations (English in most), 1 to 3 fields of work (some far more
    common than others), 0 to 3 countries (a tenth none: organisation-wide news, which
    every country's feed shows; a field operation's items name its country), an issuer,
    a summary of two or three sentences and a body of 4 to 8 paragraphs (2-5 KB).
    """
    rng = random.Random(seed)
    fields = sorted(taxonomy.fields_of_work)
    rng.shuffle(fields)
    field_weights = [1 / (rank + 1) for rank in range(len(fields))]  # Zipf-like
    countries = sorted(taxonomy.countries)
    issuers = sorted(taxonomy.issuers.values(), key=lambda term: term.slug)
    out = []
    for day in range(days):
        day_end = end - timedelta(days=day)
        for number in range(per_day):
            published = day_end - timedelta(seconds=rng.randrange(86_400))
            issuer = rng.choice(issuers)
            chosen_countries: set[str] = set()
            if issuer.country is not None and issuer.country in taxonomy.countries:
                chosen_countries.add(issuer.country)
            if rng.random() >= 0.1:
                chosen_countries.update(rng.sample(countries, rng.choice((1, 1, 1, 2, 3))))
            chosen_fields = _weighted_sample(rng, fields, field_weights, rng.choice((1, 2, 2, 3)))
            key = f"{key_prefix}-{day_end:%Y-%m-%d}-{number:04d}"
            out.append(
                FetchedItem(
                    key=key,
                    published=published,
                    translations=tuple(_translation(rng, lang, key) for lang in _languages(rng)),
                    issuer=issuer.slug,
                    fields_of_work=tuple(chosen_fields),
                    countries=tuple(sorted(chosen_countries)),
                    origin=f"synthetic:{key}",
                )
            )
    return out


def _weighted_sample(
    rng: random.Random, population: Sequence[str], weights: Sequence[float], k: int
) -> list[str]:
    chosen: list[str] = []
    while len(chosen) < k:
        pick = rng.choices(population, weights)[0]
        if pick not in chosen:
            chosen.append(pick)
    return chosen


def _languages(rng: random.Random) -> list[str]:
    first = rng.choices(list(ITEM_LANGUAGE_WEIGHTS), list(ITEM_LANGUAGE_WEIGHTS.values()))[0]
    others = [lang for lang in TRANSLATION_WEIGHTS if lang != first]
    wanted = rng.choices((0, 1, 2), (50, 35, 15))[0]
    return [first, *_weighted_sample(rng, others, [TRANSLATION_WEIGHTS[o] for o in others], wanted)]


def _translation(rng: random.Random, lang: str, key: str) -> Translation:
    words = WORDS[lang]
    title = _sentence(rng, words, 8, 14).rstrip(".")
    summary = " ".join(_sentence(rng, words, 14, 24) for _ in range(rng.randint(2, 3)))
    paragraphs = (
        " ".join(_sentence(rng, words, 12, 26) for _ in range(rng.randint(2, 4)))
        for _ in range(rng.randint(4, 8))
    )
    return Translation(
        lang=lang,
        title=title,
        summary=summary,
        body_html="".join(f"<p>{paragraph}</p>\n" for paragraph in paragraphs),
        url=f"https://www.example.org/{lang}/news/{key}",
    )


def _sentence(rng: random.Random, words: Sequence[str], shortest: int, longest: int) -> str:
    text = " ".join(rng.choices(words, k=rng.randint(shortest, longest)))
    return text[0].upper() + text[1:] + "."
