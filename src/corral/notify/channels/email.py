"""Alert notifications by e-mail, through Corral's mailer (SMTP or the demo's outbox folder)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from corral.notify.channels.base import ChannelError, Message
from corral.notify.mailer import Mail, Mailer, MailError


class EmailChannel:
    def __init__(self, name: str, to: list[str], mailer: Mailer) -> None:
        self._name = name
        self.to = to
        self.mailer = mailer

    @property
    def name(self) -> str:
        return self._name

    def send(self, message: Message) -> None:
        digest = hashlib.sha256(message.key.encode()).hexdigest()[:24]
        for address in self.to:
            mail = Mail(
                to=address,
                subject=message.title,
                text=message.text,
                message_id=f"<{digest}@corral.alerts>",
                date=datetime.fromtimestamp(message.at, UTC),
                headers={"X-Corral-Alert-Event": message.event},
            )
            try:
                self.mailer.send(mail)
            except MailError as exc:
                raise ChannelError(f"e-mail to {address}: {exc.message}") from None
