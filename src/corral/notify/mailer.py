"""E-mail over SMTP, behind one small interface.

Settings come from Corral's settings (corral.config), usually the environment, so that the
password is never in a file Corral writes nor in a log line:
  CORRAL_SMTP_URL       smtp://host:port (plain, or STARTTLS with ?starttls=1) or smtps://host:port
  CORRAL_SMTP_USER      login name (optional)
  CORRAL_SMTP_PASSWORD  login password (optional; never printed)
  CORRAL_MAIL_FROM      sender address (default corral@localhost)
  CORRAL_MAIL_DOMAIN    domain appended to an owner that is a bare user name (optional)
  CORRAL_MAIL_FALLBACK  where mail goes when a VM has no owner address (optional)
"""

from __future__ import annotations

import os
import smtplib
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from pathlib import Path
from typing import TYPE_CHECKING, Protocol
from urllib.parse import parse_qs, urlsplit

from corral.errors import ConfigError, CorralError

if TYPE_CHECKING:
    from corral.config import Settings


class MailError(CorralError):
    code = "mail-failed"
    http_status = 502


@dataclass(frozen=True)
class Mail:
    to: str
    subject: str
    text: str
    message_id: str
    date: datetime
    headers: Mapping[str, str] = field(default_factory=dict)


class Mailer(Protocol):
    @property
    def description(self) -> str:
        """Where the mail goes, in words (for the commands' output)."""
        ...

    def send(self, mail: Mail) -> None: ...


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    sender: str
    security: str = "none"  # none | starttls | ssl
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    timeout_s: float = 20.0

    @classmethod
    def from_settings(cls, settings: Settings) -> SmtpSettings | None:
        """The SMTP part of Corral's settings, or None when no SMTP URL is set."""
        return cls.from_values(
            settings.smtp_url,
            settings.mail_from,
            settings.smtp_user,
            settings.smtp_password.value if settings.smtp_password else None,
        )

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> SmtpSettings | None:
        """The same from a mapping of CORRAL_* variables (tests)."""
        return cls.from_values(
            env.get("CORRAL_SMTP_URL"),
            env.get("CORRAL_MAIL_FROM") or "corral@localhost",
            env.get("CORRAL_SMTP_USER"),
            env.get("CORRAL_SMTP_PASSWORD"),
        )

    @classmethod
    def from_values(
        cls, url: str | None, sender: str, username: str | None, password: str | None
    ) -> SmtpSettings | None:
        """None when no URL is given; one clear error for each thing wrong."""
        if not url:
            return None
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ConfigError(
                "CORRAL_SMTP_URL must look like smtp://host:port, smtp://host:port?starttls=1 "
                "or smtps://host:port."
            )
        if parts.username or parts.password:
            raise ConfigError(
                "CORRAL_SMTP_URL must not carry a login; use CORRAL_SMTP_USER and "
                "CORRAL_SMTP_PASSWORD."
            )
        starttls = parse_qs(parts.query).get("starttls", ["0"])[0] in ("1", "true", "yes")
        security = "ssl" if parts.scheme == "smtps" else ("starttls" if starttls else "none")
        try:
            port = parts.port or (465 if security == "ssl" else 25)
        except ValueError:
            raise ConfigError("CORRAL_SMTP_URL has an invalid port.") from None
        if not is_address(sender):
            raise ConfigError("CORRAL_MAIL_FROM is not an e-mail address.")
        return cls(
            host=parts.hostname,
            port=port,
            sender=sender,
            security=security,
            username=username or None,
            password=password or None,
        )


def is_address(value: str) -> bool:
    if any(c in value for c in '\r\n<>,;"') or value.count("@") != 1:
        return False
    _, addr = parseaddr(value)
    try:
        Address(addr_spec=addr)
    except (ValueError, IndexError):
        return False
    return addr == value


def build_message(mail: Mail, sender: str) -> EmailMessage:
    """The MIME message; header values with line breaks are refused by the email package."""
    msg = EmailMessage()
    try:
        msg["From"] = sender
        msg["To"] = mail.to
        msg["Subject"] = mail.subject
        msg["Message-ID"] = mail.message_id
        msg["Date"] = format_datetime(mail.date)
        for key, value in mail.headers.items():
            msg[key] = value
    except ValueError as exc:
        raise MailError(f"cannot build the e-mail to {mail.to!r}: {exc}.") from None
    msg.set_content(mail.text)
    return msg


class SmtpMailer:
    """Sends each mail over a new SMTP connection (notifications are few)."""

    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings

    @property
    def description(self) -> str:
        return f"SMTP {self.settings.host}:{self.settings.port}"

    def send(self, mail: Mail) -> None:
        msg = build_message(mail, self.settings.sender)
        s = self.settings
        where = f"{s.host}:{s.port}"
        try:
            with self._connect() as smtp:
                if s.username:
                    smtp.login(s.username, s.password or "")
                smtp.send_message(msg)
        except smtplib.SMTPAuthenticationError:
            raise MailError(
                f"the mail server {where} refused the login of {s.username!r}."
            ) from None
        except smtplib.SMTPException as exc:
            raise MailError(f"the mail server {where} refused the message: {exc}.") from None
        except OSError as exc:
            raise MailError(
                f"cannot reach the mail server {where}: {exc.strerror or exc}."
            ) from None

    def _connect(self) -> smtplib.SMTP:
        s = self.settings
        if s.security == "ssl":
            return smtplib.SMTP_SSL(
                s.host, s.port, timeout=s.timeout_s, context=ssl.create_default_context()
            )
        smtp = smtplib.SMTP(s.host, s.port, timeout=s.timeout_s)
        if s.security == "starttls":
            smtp.starttls(context=ssl.create_default_context())
        return smtp


class OutboxMailer:
    """Writes each mail as an .eml file into a folder instead of sending it.

    For a machine with no mail server (the demo): the files are the exact
    messages an SMTP server would have received. Commands say where they are.
    """

    def __init__(self, folder: Path, sender: str = "corral@localhost") -> None:
        self.folder = folder
        self.sender = sender

    @property
    def description(self) -> str:
        return f"no CORRAL_SMTP_URL: e-mails are written to {self.folder}"

    def send(self, mail: Mail) -> None:
        msg = build_message(mail, self.sender)
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        name = "".join(ch if ch.isalnum() or ch in "-." else "_" for ch in mail.message_id)
        path = self.folder / f"{mail.date:%Y%m%dT%H%M%S}-{name.strip('_')}.eml"
        # A notice carries the owner's one-case response token: readable by Corral's user only.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(msg.as_bytes())
