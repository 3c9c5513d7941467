from __future__ import annotations

import email
import email.policy
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, func, select, update

from publisher.cli import cli
from publisher.store.schema import items, outbox
from tests.delivery.conftest import PASSWORD, USERNAME, MailServer

REPO = Path(__file__).resolve().parents[2]
SUBSCRIPTIONS = """\
subscribers:
  - email: analyst@example.org
    locale: ru
    fallback_locales: [en]
    timezone: Asia/Tashkent
    fields_of_work: [policing, cyber-ict-security]
    countries: [UZ, central-asia]
    frequency: immediate
"""


@pytest.fixture
def config(tmp_path: Path, server: MailServer, monkeypatch: pytest.MonkeyPatch) -> str:
    """A deployment whose SMTP server is the test's aiosmtpd."""
    shutil.copytree(REPO / "content", tmp_path / "content")
    (tmp_path / "subscriptions.yaml").write_text(SUBSCRIPTIONS, encoding="utf-8")
    (tmp_path / "publisher.toml").write_text(
        'base_url = "https://news.example.org"\n'
        '[sender]\nfrom = "OSCE News <news@example.org>"\n'
        f'[smtp]\nhost = "127.0.0.1"\nport = {server.port}\n'
        '[[sources]]\nname = "newsroom"\nkind = "folder"\npath = "content"\n',
        encoding="utf-8",
    )
    for name in ("PUBLISHER_CONFIG", "PUBLISHER_DATABASE_URL", "PUBLISHER_SMTP_PORT"):
        monkeypatch.delenv(name, raising=False)
    return str(tmp_path / "publisher.toml")


def test_send_delivers_new_items_once_over_smtp(config: str, server: MailServer) -> None:
    """send → collect → send mails the new matching items once, in Russian; again sends none."""
    runner = CliRunner()
    first = runner.invoke(cli, ["--config", config, "send"])
    assert first.exit_code == 0, first.output
    assert server.handler.messages == []  # a new subscriber: nothing collected yet
    assert runner.invoke(cli, ["--config", config, "collect"]).exit_code == 0

    dry = runner.invoke(cli, ["--config", config, "send", "--dry-run"])
    assert dry.exit_code == 0 and "Dry run" in dry.output
    assert server.handler.messages == []

    second = runner.invoke(cli, ["--config", config, "send"])
    assert second.exit_code == 0, second.output
    received = server.handler.messages
    assert received, second.output
    assert all(m.recipients == ("analyst@example.org",) for m in received)
    subjects = [
        email.message_from_bytes(m.content, policy=email.policy.default)["Subject"]
        for m in received
    ]
    assert any("Центральной Азии" in subject for subject in subjects), subjects

    third = runner.invoke(cli, ["--config", config, "send"])
    assert third.exit_code == 0
    assert len(server.handler.messages) == len(received)


def test_send_signs_with_the_dkim_key_the_settings_name(
    config: str, server: MailServer, dkim_key: tuple[bytes, bytes], tmp_path: Path
) -> None:
    """With [dkim] set, every delivered message carries a signature that verifies."""
    import dkim  # type: ignore[import-untyped]

    private, record = dkim_key
    (tmp_path / "dkim.pem").write_bytes(private)
    with open(config, "a", encoding="utf-8") as settings:
        settings.write('[dkim]\nselector = "news"\ndomain = "example.org"\nkey_file = "dkim.pem"\n')
    runner = CliRunner()
    for command in ("send", "collect", "send"):
        result = runner.invoke(cli, ["--config", config, command])
        assert result.exit_code == 0, result.output
    received = server.handler.messages
    assert received
    for message in received:
        assert message.content.startswith(b"DKIM-Signature: ")
        assert dkim.verify(message.content, dnsfunc=lambda name, timeout=5: record)


def test_send_with_an_unreadable_dkim_key_queues_nothing_and_names_the_setting(
    config: str, server: MailServer
) -> None:
    """A key file that is not there stops `send` before it queues or sends anything."""
    with open(config, "a", encoding="utf-8") as settings:
        settings.write('[dkim]\nselector = "news"\ndomain = "example.org"\nkey_file = "no.pem"\n')
    runner = CliRunner()
    result = runner.invoke(cli, ["--config", config, "send"])
    assert result.exit_code == 1
    assert "dkim.key_file: cannot read" in result.output and "no.pem" in result.output
    assert "Traceback" not in result.output
    assert server.handler.messages == []


def test_the_smtp_password_never_reaches_the_output_or_the_logs(
    tmp_path: Path, start_server: Callable[..., MailServer]
) -> None:
    """With AUTH refused and debug logging on, neither the right nor a wrong password is
    printed or logged, in text or in JSON logs."""
    server = start_server(auth=True)
    shutil.copytree(REPO / "content", tmp_path / "content")
    (tmp_path / "subscriptions.yaml").write_text(SUBSCRIPTIONS, encoding="utf-8")
    (tmp_path / "publisher.toml").write_text(
        'secret_key = "password-test-key"\n'
        f'[smtp]\nhost = "127.0.0.1"\nport = {server.port}\nusername = "{USERNAME}"\n'
        '[[sources]]\nname = "newsroom"\nkind = "folder"\npath = "content"\n',
        encoding="utf-8",
    )
    secret = "Sup3r-s3cret-passw0rd"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PUBLISHER_")}
    env["PUBLISHER_SMTP_PASSWORD"] = secret  # wrong: the server wants PASSWORD
    outputs = []
    for log_format in ("text", "json"):
        for command in (["send"], ["collect"], ["send"]):
            done = subprocess.run(
                [sys.executable, "-m", "publisher", "-vv", "--log-format", log_format, *command],
                cwd=tmp_path,
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
            )
            outputs.append(done.stdout + done.stderr)
    text = "\n".join(outputs)
    assert "535" in text or "auth" in text.lower(), text[-2000:]  # the failure is reported
    assert secret not in text
    assert PASSWORD not in text


def test_send_forgets_what_finished_before_the_outbox_memory(
    config: str, server: MailServer
) -> None:
    """After delivering, `send` prunes messages finished more than 30 days ago (here,
    as if the first send and the collection were 40 days old), and mails nothing again."""
    runner = CliRunner()
    runner.invoke(cli, ["--config", config, "send"])
    runner.invoke(cli, ["--config", config, "collect"])
    assert runner.invoke(cli, ["--config", config, "send"]).exit_code == 0
    sent = len(server.handler.messages)
    assert sent > 0
    engine = create_engine(f"sqlite:///{Path(config).parent / 'var' / 'publisher.db'}")
    long_ago = datetime.now(UTC) - timedelta(days=40)
    with engine.begin() as conn:
        conn.execute(update(items).values(first_seen=long_ago))
        conn.execute(update(outbox).values(created_at=long_ago, finished_at=long_ago))

    again = runner.invoke(cli, ["--config", config, "send"])
    assert again.exit_code == 0, again.output
    assert re.search(rf"old messages forgotten\s*│\s*{sent}\b", again.output), again.output
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(outbox)).scalar() == 0
    engine.dispose()
    assert len(server.handler.messages) == sent
