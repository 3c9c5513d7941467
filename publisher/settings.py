"""Deployment settings: ``publisher.toml`` plus ``PUBLISHER_*`` environment overrides.

Every scalar setting can be overridden by ``PUBLISHER_<PATH>``, the path's parts joined
by ``_`` and upper-cased: ``smtp.port`` is ``PUBLISHER_SMTP_PORT``, ``database_url`` is
``PUBLISHER_DATABASE_URL``. ``PUBLISHER_CONFIG`` names another settings file. Relative
paths are relative to the directory of the settings file (or the current directory when
there is none). An error names the key, the value and what was expected.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from datetime import timedelta
from email.utils import parseaddr
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from babel import Locale, UnknownLocaleError
from cssselect import GenericTranslator, SelectorError
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from publisher.errors import SettingsError

DEFAULT_SECRET_KEY = "change-me"  # noqa: S105 - the marker `publisher run` refuses
_DURATION = re.compile(r"^\s*(\d+)\s*(s|m|h|d)\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def _parse_duration(value: object) -> object:
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match is None:
            raise ValueError("expected a duration such as '30s', '15m', '2h' or '1d'")
        return timedelta(**{_UNITS[match[2]]: int(match[1])})
    if isinstance(value, int | float):
        return timedelta(seconds=value)
    return value


def _positive(value: timedelta) -> timedelta:
    if value <= timedelta(0):
        raise ValueError("expected a duration greater than zero")
    return value


Duration = Annotated[timedelta, BeforeValidator(_parse_duration), AfterValidator(_positive)]


def _locale_identifier(value: str) -> str:
    try:
        Locale.parse(value)
    except (UnknownLocaleError, ValueError) as exc:
        raise ValueError(f"expected a locale identifier known to Babel ({exc})") from exc
    return value


LocaleName = Annotated[str, AfterValidator(_locale_identifier)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class TlsMode(StrEnum):
    NONE = "none"
    STARTTLS = "starttls"
    TLS = "tls"


class SenderSettings(_Model):
    from_: str = Field(default="News <news@example.org>", alias="from")
    reply_to: str | None = None


class SmtpSettings(_Model):
    host: str = "localhost"
    port: int = Field(default=25, ge=1, le=65535)
    tls: TlsMode = TlsMode.NONE
    verify_certificates: bool = True
    username: str | None = None
    # Passwords come from the environment (PUBLISHER_SMTP_PASSWORD) or a file, never
    # from publisher.toml, which is often committed.
    password: str | None = Field(default=None, exclude=True, repr=False)
    password_file: Path | None = None
    connections: int = Field(default=4, ge=1, le=256)
    rate_per_second: float = Field(default=0, ge=0)
    timeout: Duration = timedelta(seconds=30)
    # A PEM file of CA certificates to trust instead of the system's (a private CA);
    # verification itself stays on unless verify_certificates = false.
    ca_file: Path | None = None
    # After this many consecutive connection errors or 4xx replies the transport stops
    # sending for `pause` instead of burning the whole outbox on a sick server;
    # 0 never pauses.
    error_threshold: int = Field(default=10, ge=0)
    pause: Duration = timedelta(minutes=1)


class DkimSettings(_Model):
    """DKIM signing (RFC 6376) of every message, off until all three keys are set.

    The private key is read from ``key_file`` (PEM), never from this file.
    """

    selector: str | None = Field(default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    domain: str | None = Field(default=None, pattern=r"^[A-Za-z0-9.-]+\.[A-Za-z]{2,}$")
    key_file: Path | None = None

    @model_validator(mode="after")
    def _all_or_none(self) -> DkimSettings:
        given = {"selector": self.selector, "domain": self.domain, "key_file": self.key_file}
        missing = [name for name, value in given.items() if value is None]
        if 0 < len(missing) < len(given):
            raise ValueError(
                f"DKIM signing needs selector, domain and key_file; missing: {', '.join(missing)}"
            )
        return self

    @property
    def enabled(self) -> bool:
        return self.key_file is not None


class OutboxSettings(_Model):
    """How senders share the outbox."""

    # A claimed row belongs to its sender this long; a sender that dies leaves its rows
    # to the others once the lease runs out. Longer than the slowest batch's sending.
    lease: Duration = timedelta(minutes=10)
    batch: int = Field(default=200, ge=1, le=10_000)
    # How far back the outbox remembers, and so how far back a pass mails: an item
    # collected longer ago is in the feeds but no longer in anyone's email, and messages
    # finished longer ago are deleted with what only they needed. At least a week, the
    # longest digest period, so that a weekly digest always holds its whole week.
    keep: Duration = timedelta(days=30)

    @field_validator("keep")
    @classmethod
    def _at_least_a_week(cls, value: timedelta) -> timedelta:
        if value < timedelta(days=7):
            raise ValueError("expected at least '7d', the longest digest period")
        return value


class FeedSettings(_Model):
    """The Atom, RSS and JSON feeds: how many entries, how long readers may cache them."""

    entries: int = Field(default=50, ge=1, le=1000)
    max_age: Duration = timedelta(minutes=5)  # Cache-Control: max-age of served feeds
    out_dir: Path = Path("var/feeds")  # where `publisher feeds build` writes
    websub_hub: str | None = Field(default=None, pattern=r"^https?://\S+$")
    # Entry and feed ids are tag: URIs (RFC 4151) minted by this authority (default:
    # the host of base_url) on this date; an item keeps the id it was first given.
    tag_authority: str | None = Field(default=None, pattern=r"^[A-Za-z0-9.-]+$")
    tag_date: str = Field(default="2026", pattern=r"^\d{4}(-\d{2}(-\d{2})?)?$")
    # The web app trusts a read of the store's revision this long before reading it
    # again: a change reaches polling readers within it; 0 reads it for every request.
    revision_ttl_ms: int = Field(default=1000, ge=0, le=60_000)
    # Entry content longer than this many characters is cut, with a link to the rest.
    max_content: int = Field(default=100_000, ge=1000)


class HttpSettings(_Model):
    """How sources are fetched over HTTP."""

    timeout: Duration = timedelta(seconds=20)
    retries: int = Field(default=2, ge=0, le=10)
    concurrency: int = Field(default=4, ge=1, le=64)
    user_agent: str = "publisher/0.1 (+https://github.com/publisher)"
    max_bytes: int = Field(default=10_000_000, ge=1024)


class _SourceBase(_Model):
    name: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")]
    interval: Duration = timedelta(minutes=15)
    enabled: bool = True


class FolderSourceSettings(_SourceBase):
    kind: Literal["folder"]
    path: Path


class FeedSourceSettings(_SourceBase):
    kind: Literal["feed"]
    url: str  # http(s)://… or a local file path
    language: LocaleName | None = None  # when the feed does not say
    issuer: str | None = None  # issuer slug for every entry
    # Category term → field-of-work slug or country code, for terms the taxonomy
    # does not recognise by itself.
    categories: dict[str, str] = Field(default_factory=dict)


def _css_selector(value: str) -> str:
    try:
        GenericTranslator().css_to_xpath(value)
    except SelectorError as exc:
        raise ValueError(f"expected a CSS selector ({exc})") from exc
    return value


CssSelector = Annotated[str, AfterValidator(_css_selector)]


class HtmlSelectors(_Model):
    """CSS selectors for a news listing page and its article pages."""

    article_links: CssSelector = ".news-list a[href]"
    title: CssSelector = "h1"
    summary: CssSelector = ".lead"
    body: CssSelector = ".article-body"
    # The metadata block: label elements, each followed by the sibling elements that
    # hold its values (<dt>Issued on:</dt><dd><time datetime="…">…</time></dd>).
    meta_label: CssSelector = ".meta dt"
    meta_value: CssSelector = "dd"
    # The page's translations (HTML Living Standard: link type "alternate" + hreflang).
    translations: CssSelector = "link[rel~=alternate][hreflang]"


class HtmlLabels(_Model):
    """Label texts (in any of the site's languages) that introduce metadata values."""

    issued_on: list[str] = ["Issued on", "Опубликовано", "Publié le", "Veröffentlicht am"]
    issued_by: list[str] = ["Issued by", "Кем опубликовано", "Publié par", "Herausgegeben von"]
    fields_of_work: list[str] = [
        "Fields of work",
        "Направления деятельности",
        "Domaines d'action",
        "Tätigkeitsbereiche",
    ]
    countries: list[str] = ["Countries", "Страны", "Pays", "Länder"]


class HtmlSourceSettings(_SourceBase):
    kind: Literal["html"]
    listing_url: str
    language: LocaleName = "en"  # when a page does not say
    max_articles: int = Field(default=50, ge=1, le=1000)
    selectors: HtmlSelectors = HtmlSelectors()
    labels: HtmlLabels = HtmlLabels()


SourceSettings = Annotated[
    FolderSourceSettings | FeedSourceSettings | HtmlSourceSettings,
    Field(discriminator="kind"),
]


class Settings(_Model):
    base_url: str = "http://localhost:8000"
    database_url: str = "sqlite:///var/publisher.db"
    subscriptions: Path = Path("subscriptions.yaml")
    locales: list[LocaleName] = ["en", "fr", "de", "it", "ru", "es", "uk", "tr", "ar"]
    default_locale: LocaleName = "en"
    secret_key: str = Field(default=DEFAULT_SECRET_KEY, repr=False)
    # Keys that signed earlier unsubscribe links: still accepted after a rotation.
    previous_secret_keys: list[str] = Field(default_factory=list, repr=False)
    # The List-Id of our messages (RFC 2919), also bound into unsubscribe tokens.
    list_id: str = Field(default="news", pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    # An edit of subscriptions.yaml that would mail more than this many times as many
    # addresses waits for `publisher check --confirm` while `publisher run` runs; 0: never.
    recipients_growth_limit: float = Field(default=3.0, ge=0)
    templates: Path | None = None  # an operator's own templates instead of the bundled
    taxonomy: Path | None = None  # an operator's own taxonomy instead of the bundled
    sender: SenderSettings = SenderSettings()
    smtp: SmtpSettings = SmtpSettings()
    dkim: DkimSettings = DkimSettings()
    outbox: OutboxSettings = OutboxSettings()
    feeds: FeedSettings = FeedSettings()
    http: HttpSettings = HttpSettings()
    sources: list[SourceSettings] = []
    # Where this came from, for messages; not a setting.
    config_path: Path | None = Field(default=None, exclude=True)

    @field_validator("locales", "previous_secret_keys", mode="before")
    @classmethod
    def _split_locales(cls, value: object) -> object:
        if isinstance(value, str):  # from the environment: "en,fr,de"
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError("expected an absolute http(s) URL such as https://news.example.org")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        if self.default_locale not in self.locales:
            raise ValueError(
                f"default_locale {self.default_locale!r} is not one of locales {self.locales}"
            )
        names = [source.name for source in self.sources]
        if duplicates := sorted({n for n in names if names.count(n) > 1}):
            raise ValueError(f"source names must be unique; repeated: {', '.join(duplicates)}")
        return self

    @property
    def organisation(self) -> str:
        """Who publishes: the sender's display name, else the list id."""
        return parseaddr(self.sender.from_)[0] or self.list_id

    @property
    def tag_prefix(self) -> str:
        """``tag:news.example.org,2026:``, the start of every entry and feed id."""
        authority = self.feeds.tag_authority or urlsplit(self.base_url).hostname or "localhost"
        return f"tag:{authority},{self.feeds.tag_date}:"

    @property
    def entry_id_prefix(self) -> str:
        """What an item's id is appended to for its feed entry id."""
        return f"{self.tag_prefix}item/"

    @property
    def smtp_password(self) -> str | None:
        if self.smtp.password is not None:
            return self.smtp.password
        if self.smtp.password_file is not None:
            try:
                return self.smtp.password_file.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise SettingsError(
                    f"smtp.password_file: cannot read {self.smtp.password_file}: {exc}"
                ) from exc
        return None


def load_settings(
    path: Path | None = None, *, environ: Mapping[str, str] | None = None
) -> Settings:
    """Read the settings file (``PUBLISHER_CONFIG``, else ``./publisher.toml`` if present)
    and apply the environment's overrides."""
    env = os.environ if environ is None else environ
    if path is None and env.get("PUBLISHER_CONFIG"):
        path = Path(env["PUBLISHER_CONFIG"])
    if path is None and Path("publisher.toml").is_file():
        path = Path("publisher.toml")
    raw: dict[str, Any] = {}
    label = "defaults"
    if path is not None:
        label = str(path)
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise SettingsError(f"{path}: cannot read the settings file: {exc}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise SettingsError(f"{path}: not valid TOML: {exc}") from exc
    if "password" in raw.get("smtp", {}):
        raise SettingsError(
            f"{label}: smtp.password: passwords are not read from the settings file; "
            "expected PUBLISHER_SMTP_PASSWORD or smtp.password_file"
        )
    origins = _apply_environment(raw, env)
    try:
        settings = Settings.model_validate(raw)
    except ValidationError as exc:
        text = path.read_text(encoding="utf-8") if path is not None else ""
        raise SettingsError(_describe(exc, raw, label, origins, text)) from exc
    base = path.resolve().parent if path is not None else Path.cwd()
    return _resolve_paths(settings, base, path)


def _environment_keys() -> dict[str, tuple[str, ...]]:
    """``PUBLISHER_SMTP_PORT`` → ``("smtp", "port")`` for every scalar setting."""
    keys: dict[str, tuple[str, ...]] = {}
    for name, info in Settings.model_fields.items():
        if name in {"sources", "config_path"}:
            continue
        section = info.annotation
        key = info.alias or name
        if isinstance(section, type) and issubclass(section, BaseModel):
            for sub, sub_info in section.model_fields.items():
                sub_key = sub_info.alias or sub
                keys[f"PUBLISHER_{key}_{sub_key}".upper()] = (key, sub_key)
        else:
            keys[f"PUBLISHER_{key}".upper()] = (key,)
    return keys


_ENV_KEYS = _environment_keys()


def _apply_environment(raw: dict[str, Any], env: Mapping[str, str]) -> dict[tuple[str, ...], str]:
    origins: dict[tuple[str, ...], str] = {}
    for variable, key_path in _ENV_KEYS.items():
        if variable not in env:
            continue
        target = raw
        for part in key_path[:-1]:
            target = target.setdefault(part, {})
        target[key_path[-1]] = env[variable]
        origins[key_path] = variable
    return origins


def _describe(
    exc: ValidationError,
    raw: dict[str, Any],
    label: str,
    origins: dict[tuple[str, ...], str],
    text: str,
) -> str:
    lines = []
    for error in exc.errors():
        # The discriminated union adds the source kind to the location: leave it out.
        parts = [p for p in error["loc"] if p not in _SOURCE_KINDS]
        location = tuple(str(p) for p in parts)
        key = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in parts).lstrip(".")
        key = key or "(top level)"
        value = _lookup(raw, error["loc"])
        where = origins.get(location) or _locate(text, parts, label)
        found = "" if value is _MISSING else f" = {value!r}"
        message = str(error["msg"]).removeprefix("Value error, ")
        message = message.replace("Input should be ", "expected ", 1)
        kind = error["type"]
        if kind == "union_tag_invalid":
            parts, key = [*parts, "kind"], f"{key}.kind"
            value = _lookup(raw, (*error["loc"], "kind"))
            found = f" = {value!r}"
            where = _locate(text, parts, label)
        message = _MESSAGES.get(kind, message)
        lines.append(f"{where}: {key}{found}: {message}")
    return "\n".join(lines)


_MISSING = object()
_MESSAGES = {
    "extra_forbidden": "unknown setting",
    "missing": "required setting is missing",
    "int_parsing": "expected an integer",
    "int_type": "expected an integer",
    "float_parsing": "expected a number",
    "float_type": "expected a number",
    "bool_parsing": "expected true or false",
    "bool_type": "expected true or false",
    "string_type": "expected a string",
    "list_type": "expected a list",
    "model_type": "expected a table",
    "union_tag_invalid": "unknown source kind; expected folder, feed or html",
}
_TABLE = re.compile(r"^\s*(\[\[?)\s*([A-Za-z0-9_.-]+)\s*\]\]?")


def _locate(text: str, parts: list[int | str], label: str) -> str:
    """``publisher.toml:LINE:COLUMN`` of the key at ``parts``, or the file name alone.

    tomllib keeps no positions, so the key is looked up in the text: tables by their
    header (``[smtp]``, the n-th ``[[sources]]``), then the key's own line.
    """
    table: list[int | str] = []
    counts: dict[str, int] = {}
    wanted_table, key = parts[:-1], parts[-1] if parts else None
    fallback = label
    for number, line in enumerate(text.splitlines(), start=1):
        if match := _TABLE.match(line):
            name = match[2]
            if match[1] == "[[":
                counts[name] = counts.get(name, -1) + 1
                table = [*name.split("."), counts[name]]
            else:
                table = [*name.split(".")]
                if name.split(".")[0] in counts:  # [sources.selectors] inside [[sources]]
                    table = [name.split(".")[0], counts[name.split(".")[0]], *name.split(".")[1:]]
            if table == parts:
                fallback = f"{label}:{number}:{line.index(name) + 1}"
            continue
        if table == wanted_table and isinstance(key, str):
            stripped = line.lstrip()
            if re.match(rf"^{re.escape(key)}\s*=", stripped):
                return f"{label}:{number}:{len(line) - len(stripped) + 1}"
    return fallback


_SOURCE_KINDS = frozenset({"folder", "feed", "html"})


def _lookup(raw: Any, loc: tuple[int | str, ...]) -> Any:
    value = raw
    for part in loc:
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and isinstance(part, int) and part < len(value):
            value = value[part]
        elif part in _SOURCE_KINDS:
            continue
        else:
            return _MISSING
    return value


def _resolve_paths(settings: Settings, base: Path, path: Path | None) -> Settings:
    def resolve(value: Path | None) -> Path | None:
        return None if value is None else (base / value.expanduser())

    sources: list[SourceSettings] = []
    for source in settings.sources:
        if isinstance(source, FolderSourceSettings):
            source = source.model_copy(update={"path": resolve(source.path)})
        elif isinstance(source, FeedSourceSettings) and "://" not in source.url:
            source = source.model_copy(update={"url": str(base / Path(source.url).expanduser())})
        sources.append(source)
    database_url = settings.database_url
    if database_url.startswith("sqlite:///") and not database_url.startswith("sqlite:////"):
        relative = database_url.removeprefix("sqlite:///")
        if relative and relative != ":memory:":
            database_url = f"sqlite:///{base / relative}"
    smtp = settings.smtp.model_copy(
        update={
            "password_file": resolve(settings.smtp.password_file),
            "ca_file": resolve(settings.smtp.ca_file),
        }
    )
    return settings.model_copy(
        update={
            "subscriptions": resolve(settings.subscriptions),
            "templates": resolve(settings.templates),
            "taxonomy": resolve(settings.taxonomy),
            "sources": sources,
            "database_url": database_url,
            "smtp": smtp,
            "feeds": settings.feeds.model_copy(update={"out_dir": resolve(settings.feeds.out_dir)}),
            "dkim": settings.dkim.model_copy(update={"key_file": resolve(settings.dkim.key_file)}),
            "config_path": path,
        }
    )
