"""Fixtures for the reclamation workflow: a real SMTP server, a test-driver host, the service."""

from __future__ import annotations

import contextlib
import email
import email.policy
import socket
import threading
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from corral.engines.costing import load_cost_model
from corral.engines.reclaim import Policy
from corral.inventory.service import Inventory
from corral.notify.mailer import SmtpMailer, SmtpSettings
from corral.reclaim.service import Recipients, ReclaimService
from tests.conftest import Clock
from tests.inventory.conftest import nodes  # noqa: F401  (fixture)
from tests.requires import Resource, requires


class Inbox:
    """What the SMTP server received, parsed."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self._lock = threading.Lock()

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        raw = envelope.content  # type: ignore[attr-defined]
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        with self._lock:
            self.messages.append(msg)  # type: ignore[arg-type]
        return "250 OK"

    def for_case(self, case_id: int, step: str | None = None) -> list[EmailMessage]:
        with self._lock:
            return [
                m
                for m in self.messages
                if m["X-Corral-Case"] == str(case_id)
                and (step is None or m["X-Corral-Step"] == step)
            ]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def smtp_server() -> Iterator[tuple[Inbox, SmtpSettings]]:
    """A real SMTP server (aiosmtpd) on a free loopback port, and the settings to reach it."""
    inbox = Inbox()
    port = _free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, SmtpSettings(host="127.0.0.1", port=port, sender="corral@example.test")
    finally:
        controller.stop()


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, SmtpSettings]]:
    requires(Resource.smtp)
    with smtp_server() as server:
        yield server


POLICY = Policy(notice_days=7, quarantine_days=7, cooling_off_days=14, approvals={"delete": 1})


def make_service(
    inventory: Inventory, settings: SmtpSettings, policy: Policy = POLICY, **kw: object
) -> ReclaimService:
    return ReclaimService(
        inventory,
        policy,
        load_cost_model(None),
        SmtpMailer(settings),
        recipients=Recipients(domain="example.test", fallback="admins@example.test"),
        base_url="http://corral.example.test:8000",
        **kw,  # type: ignore[arg-type]
    )


@pytest.fixture
def fleet(inventory: Inventory, nodes: Path) -> Inventory:  # noqa: F811
    inventory.add_host("a", f"test://{nodes / 'host-a.xml'}")
    inventory.add_host("b", f"test://{nodes / 'host-b.xml'}")
    inventory.sync()
    return inventory


__all__ = ["POLICY", "Clock", "Inbox", "make_service"]
