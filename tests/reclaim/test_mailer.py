"""E-mail settings and sending: over a real SMTP server (aiosmtpd), and the failures."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from corral.errors import ConfigError
from corral.notify.mailer import (
    Mail,
    MailError,
    OutboxMailer,
    SmtpMailer,
    SmtpSettings,
    is_address,
)
from tests.reclaim.conftest import Inbox, _free_port

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _mail(**kw: object) -> Mail:
    base: dict[str, object] = {
        "to": "alice@example.test",
        "subject": "VM web-01 will be reclaimed",
        "text": "Hello\n",
        "message_id": "<m1@corral>",
        "date": NOW,
    }
    base.update(kw)
    return Mail(**base)  # type: ignore[arg-type]


def test_settings_from_environment() -> None:
    assert SmtpSettings.from_env({}) is None
    s = SmtpSettings.from_env(
        {
            "CORRAL_SMTP_URL": "smtp://mail.example.test:2525?starttls=1",
            "CORRAL_SMTP_USER": "corral",
            "CORRAL_SMTP_PASSWORD": "s3cret-pw",
            "CORRAL_MAIL_FROM": "corral@example.test",
        }
    )
    assert s is not None
    assert (s.host, s.port, s.security, s.username) == (
        "mail.example.test",
        2525,
        "starttls",
        "corral",
    )
    assert "s3cret-pw" not in repr(s)
    ssl = SmtpSettings.from_env({"CORRAL_SMTP_URL": "smtps://mail.example.test"})
    assert ssl is not None and (ssl.port, ssl.security) == (465, "ssl")
    for url, msg in (
        ("http://mail.example.test", "must look like"),
        ("smtp://user:pw@mail.example.test", "must not carry a login"),
        ("smtp://mail.example.test:99999", "invalid port"),
    ):
        with pytest.raises(ConfigError, match=msg):
            SmtpSettings.from_env({"CORRAL_SMTP_URL": url})
    with pytest.raises(ConfigError, match="CORRAL_MAIL_FROM"):
        SmtpSettings.from_env({"CORRAL_SMTP_URL": "smtp://h", "CORRAL_MAIL_FROM": "not an address"})


def test_addresses() -> None:
    assert is_address("alice@example.test")
    for bad in ("alice", "a@b@c", "alice@example.test\r\nBcc: x@y", "<a@b>", "a@b, c@d"):
        assert not is_address(bad)


def test_mail_really_arrives(smtp: tuple[Inbox, SmtpSettings]) -> None:
    inbox, settings = smtp
    SmtpMailer(settings).send(_mail(headers={"X-Corral-Case": "7"}))
    (got,) = inbox.for_case(7)
    assert got["To"] == "alice@example.test" and got["From"] == "corral@example.test"
    assert got["Message-ID"] == "<m1@corral>" and got.get_content().strip() == "Hello"


def test_header_injection_is_refused(smtp: tuple[Inbox, SmtpSettings]) -> None:
    inbox, settings = smtp
    with pytest.raises(MailError, match="cannot build"):
        SmtpMailer(settings).send(_mail(subject="hi\r\nBcc: victim@example.test"))
    assert inbox.messages == []


def test_unreachable_server_is_a_clear_error() -> None:
    settings = SmtpSettings(
        host="127.0.0.1", port=_free_port(), sender="c@example.test", timeout_s=2
    )
    with pytest.raises(MailError, match=r"cannot reach the mail server 127\.0\.0\.1"):
        SmtpMailer(settings).send(_mail())


def test_outbox_writes_the_exact_message(tmp_path: Path) -> None:
    OutboxMailer(tmp_path / "outbox", "corral@example.test").send(_mail())
    (eml,) = (tmp_path / "outbox").iterdir()
    raw = eml.read_text()
    assert "Message-ID: <m1@corral>" in raw and "To: alice@example.test" in raw
    assert eml.stat().st_mode & 0o777 == 0o600
