from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from publisher.errors import SettingsError
from publisher.settings import DEFAULT_SECRET_KEY, FolderSourceSettings, TlsMode, load_settings

REPO = Path(__file__).resolve().parent.parent


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "publisher.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_shipped_settings_load() -> None:
    """publisher.toml in the repository is valid and names the sample folder source."""
    settings = load_settings(REPO / "publisher.toml", environ={})
    [source] = settings.sources
    assert isinstance(source, FolderSourceSettings)
    assert source.path == REPO / "content"
    assert source.interval == timedelta(minutes=15)
    assert settings.subscriptions == REPO / "subscriptions.yaml"
    assert settings.database_url == f"sqlite:///{REPO / 'var' / 'publisher.db'}"
    assert settings.secret_key == DEFAULT_SECRET_KEY


def test_environment_overrides_every_scalar_setting(tmp_path: Path) -> None:
    """PUBLISHER_<SECTION>_<KEY> overrides the file; values are typed and validated."""
    path = _write(tmp_path, '[smtp]\nhost = "mail.example.org"\nport = 25\n')
    settings = load_settings(
        path,
        environ={
            "PUBLISHER_SMTP_PORT": "587",
            "PUBLISHER_SMTP_TLS": "starttls",
            "PUBLISHER_SMTP_PASSWORD": "s3cret",
            "PUBLISHER_DATABASE_URL": "postgresql+psycopg://u@db/news",
            "PUBLISHER_BASE_URL": "https://news.example.org/",
            "PUBLISHER_LOCALES": "en, ru",
            "PUBLISHER_DEFAULT_LOCALE": "ru",
            "PUBLISHER_SENDER_FROM": "News <n@example.org>",
            "PUBLISHER_SUBSCRIPTIONS": "/etc/publisher/subs.yaml",
        },
    )
    assert (settings.smtp.host, settings.smtp.port) == ("mail.example.org", 587)
    assert settings.smtp.tls is TlsMode.STARTTLS
    assert settings.smtp_password == "s3cret"
    assert "s3cret" not in repr(settings)
    assert settings.database_url == "postgresql+psycopg://u@db/news"
    assert settings.base_url == "https://news.example.org"
    assert settings.locales == ["en", "ru"]
    assert settings.sender.from_ == "News <n@example.org>"
    assert settings.subscriptions == Path("/etc/publisher/subs.yaml")


def test_publisher_config_names_another_file(tmp_path: Path) -> None:
    """PUBLISHER_CONFIG points at the settings file to read."""
    path = _write(tmp_path, 'base_url = "https://elsewhere.example.org"\n')
    settings = load_settings(environ={"PUBLISHER_CONFIG": str(path)})
    assert settings.base_url == "https://elsewhere.example.org"
    assert settings.config_path == path


def test_errors_name_the_place_the_key_the_value_and_what_was_expected(tmp_path: Path) -> None:
    """Every wrong setting is reported at once, each with file:line:column, key and value."""
    path = _write(
        tmp_path,
        'base_url = "news.example.org"\n'
        "[smtp]\n"
        'port = "abc"\n'
        'tls = "ssl"\n'
        "bogus = 1\n"
        "[[sources]]\n"
        'name = "newsroom"\n'
        'kind = "folder"\n'
        'path = "content"\n'
        'interval = "15x"\n'
        "[[sources]]\n"
        'name = "wire"\n'
        'kind = "rss"\n',
    )
    with pytest.raises(SettingsError) as caught:
        load_settings(path, environ={"PUBLISHER_SMTP_RATE_PER_SECOND": "fast"})
    assert str(caught.value).splitlines() == [
        f"{path}:1:1: base_url = 'news.example.org': expected an absolute http(s) URL "
        "such as https://news.example.org",
        f"{path}:3:1: smtp.port = 'abc': expected an integer",
        f"{path}:4:1: smtp.tls = 'ssl': expected 'none', 'starttls' or 'tls'",
        "PUBLISHER_SMTP_RATE_PER_SECOND: smtp.rate_per_second = 'fast': expected a number",
        f"{path}:5:1: smtp.bogus = 1: unknown setting",
        f"{path}:10:1: sources[0].interval = '15x': expected a duration such as '30s', "
        "'15m', '2h' or '1d'",
        f"{path}:13:1: sources[1].kind = 'rss': unknown source kind; expected folder, feed or html",
    ]


def test_a_password_in_the_file_is_refused(tmp_path: Path) -> None:
    """Passwords come from the environment or a file, never from publisher.toml."""
    path = _write(tmp_path, '[smtp]\npassword = "hunter2"\n')
    with pytest.raises(SettingsError, match=r"PUBLISHER_SMTP_PASSWORD or smtp\.password_file"):
        load_settings(path, environ={})


def test_password_file_is_read_relative_to_the_settings(tmp_path: Path) -> None:
    """smtp.password_file and ca_file resolve beside publisher.toml; the password is stripped."""
    (tmp_path / "smtp.pw").write_text("from-file\n")
    text = '[smtp]\npassword_file = "smtp.pw"\nca_file = "ca.pem"\n'
    settings = load_settings(_write(tmp_path, text), environ={})
    assert settings.smtp_password == "from-file"
    assert settings.smtp.ca_file == tmp_path / "ca.pem"


def test_dkim_is_off_by_default_and_its_key_file_resolves_beside_the_settings(
    tmp_path: Path,
) -> None:
    """No [dkim]: nothing is signed; with one, key_file is relative to publisher.toml."""
    assert not load_settings(_write(tmp_path, ""), environ={}).dkim.enabled
    text = '[dkim]\nselector = "news"\ndomain = "example.org"\nkey_file = "keys/dkim.pem"\n'
    settings = load_settings(_write(tmp_path, text), environ={})
    assert settings.dkim.enabled
    assert settings.dkim.key_file == tmp_path / "keys" / "dkim.pem"
    overridden = load_settings(
        _write(tmp_path, text), environ={"PUBLISHER_DKIM_SELECTOR": "news2026"}
    )
    assert overridden.dkim.selector == "news2026"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("this is = = not toml", "not valid TOML"),
        ('default_locale = "xx_YY"\n', "default_locale = 'xx_YY': expected a locale"),
        ('locales = ["en"]\ndefault_locale = "ru"\n', "is not one of locales"),
        (
            '[[sources]]\nname="a"\nkind="folder"\npath="x"\n'
            '[[sources]]\nname="a"\nkind="folder"\npath="y"\n',
            "source names must be unique; repeated: a",
        ),
        ('[[sources]]\nname="a"\nkind="feed"\n', "sources[0].url: required setting is missing"),
        ('[dkim]\nselector = "news"\n', "missing: domain, key_file"),
        ('[dkim]\ndomain = "not a domain"\n', "dkim.domain = 'not a domain'"),
        ('[outbox]\nkeep = "2d"\n', "expected at least '7d', the longest digest period"),
    ],
)
def test_broken_settings_say_what_is_wrong(tmp_path: Path, text: str, expected: str) -> None:
    """Syntax errors, unknown locales, duplicates and missing keys are explained."""
    with pytest.raises(SettingsError) as caught:
        load_settings(_write(tmp_path, text), environ={})
    assert expected in str(caught.value)


def test_local_paths_of_sources_are_relative_to_the_settings(tmp_path: Path) -> None:
    """A folder path and a feed file path resolve beside publisher.toml; URLs stay as given."""
    path = _write(
        tmp_path,
        '[[sources]]\nname = "a"\nkind = "folder"\npath = "content"\n'
        '[[sources]]\nname = "b"\nkind = "feed"\nurl = "feeds/wire.xml"\n'
        '[[sources]]\nname = "c"\nkind = "feed"\nurl = "https://example.org/rss"\n',
    )
    folder, local, remote = load_settings(path, environ={}).sources
    assert isinstance(folder, FolderSourceSettings) and folder.path == tmp_path / "content"
    assert local.kind == "feed" and local.url == str(tmp_path / "feeds" / "wire.xml")
    assert remote.kind == "feed" and remote.url == "https://example.org/rss"
