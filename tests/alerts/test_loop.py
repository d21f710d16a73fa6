"""``corral alerts run``: real processes evaluate on a schedule, nobody calls ``evaluate``.

A metric crosses its threshold while two loops run against one PostgreSQL: the one holding
the advisory lock fires the alert and a real SMTP server (aiosmtpd) receives the mail; the
other stands by. Killed with SIGKILL, the leader hands over at once, and the new leader
does not send the mail again.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from corral.api.app import create_app
from corral.config import Settings
from corral.domain.metrics import EntityKind, Sample, SampleBatch
from corral.engines.alerting import AlertState, parse_rules
from corral.inventory.service import Inventory
from corral.metrics.store import DuckDBStore
from corral.services.alerts import AlertService
from corral.store.db import Database
from tests.reclaim.conftest import Inbox, smtp_server
from tests.requires import Resource, requires

pytestmark = pytest.mark.parametrize("db", ["postgresql"], indirect=True)

RULES = """
rules:
  - {name: hot, kind: threshold, metric: cpu_pct, op: '>', value: 90}
channels:
  - {name: ops-mail, type: email, to: [ops@example.test]}
"""


class Loop:
    """``corral alerts run`` in a real process; its output lines, read as they come."""

    def __init__(self, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "corral", "alerts", "run", "--interval", "0.3"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, text: str, after: int = 0, timeout_s: float = 120.0) -> str:
        """The first line from index ``after`` on that holds ``text``."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for line in self.lines[after:]:
                if text in line:
                    return line
            if self.proc.poll() is not None and not self._reader.is_alive():
                break
            time.sleep(0.05)
        raise AssertionError(f"no line with {text!r}; the loop said:\n" + "\n".join(self.lines))

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)


def _write(path: Path, value: float) -> None:
    store = DuckDBStore(str(path))
    store.write(
        SampleBatch.from_samples(
            [Sample(EntityKind.vm, "vm-a", "kvm-01", "cpu_pct", int(time.time()), value)]
        )
    )
    store.close()


def _until(check: Callable[[], bool], timeout_s: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return False


def _env(db: Database, tmp_path: Path, smtp_port: int) -> dict[str, str]:
    (tmp_path / "alerts.yaml").write_text(RULES)
    return {
        **os.environ,
        "CORRAL_HOME": str(tmp_path / "home"),
        "CORRAL_DATABASE_URL": db.url.render_as_string(hide_password=False),
        "CORRAL_METRICS_URL": f"duckdb://{tmp_path / 'metrics.duckdb'}",
        "CORRAL_ALERT_RULES": str(tmp_path / "alerts.yaml"),
        "CORRAL_SMTP_URL": f"smtp://127.0.0.1:{smtp_port}",
        "CORRAL_MAIL_FROM": "corral@example.test",
    }


def _mail(inbox: Inbox) -> list[str]:
    return [str(m["Subject"]) for m in inbox.messages]


def test_a_crossed_threshold_is_mailed_once_by_one_of_two_loops(
    db: Database, tmp_path: Path
) -> None:
    requires(Resource.smtp)
    metrics = tmp_path / "metrics.duckdb"
    _write(metrics, 50.0)
    loops: list[Loop] = []
    with smtp_server() as (inbox, smtp):
        env = _env(db, tmp_path, smtp.port)
        try:
            first = Loop(env)
            loops.append(first)
            first.wait_for("evaluated: 0 condition(s)")
            second = Loop(env)
            loops.append(second)
            second.wait_for("standing by: another evaluator leads")

            _write(metrics, 99.0)  # the metric crosses the threshold; nobody calls evaluate
            first.wait_for("1 notification(s), 1 queued; sent 1, failed 0")
            assert _until(lambda: len(inbox.messages) >= 1), first.lines

            first.kill()  # the leader dies; the other takes over at once
            seen = len(second.lines)
            took_over = second.wait_for("evaluated:", after=seen)
            assert "1 condition(s), 0 alert(s) changed, 0 notification(s)" in took_over
            second.wait_for("evaluated:", after=second.lines.index(took_over) + 1)
        finally:
            for loop in loops:
                loop.kill()
        assert _mail(inbox) == ["[corral] FIRING: hot (1)"]
        assert inbox.messages[0]["To"] == "ops@example.test"

    service = AlertService(db, parse_rules(RULES))
    [alert] = service.alerts()
    assert alert.state is AlertState.firing and alert.label("entity") == "vm-a"
    assert [o.sent_at is not None for o in service.outbox()] == [True]


def test_the_api_server_runs_the_loop_when_its_setting_says_so(
    inventory: Inventory, tmp_path: Path
) -> None:
    requires(Resource.smtp)
    metrics = tmp_path / "metrics.duckdb"
    _write(metrics, 99.0)
    (tmp_path / "alerts.yaml").write_text(RULES)
    db = inventory.db
    with smtp_server() as (inbox, smtp):
        settings = Settings(
            home=tmp_path / "home",
            database_url=db.url.render_as_string(hide_password=False),
            metrics_url=f"duckdb://{metrics}",
            alert_rules=tmp_path / "alerts.yaml",
            smtp_url=f"smtp://127.0.0.1:{smtp.port}",
            mail_from="corral@example.test",
            alert_interval_s=0.2,
            alert_loop_in_server=True,
        )
        with TestClient(create_app(inventory, settings=settings)) as client:
            assert client.get("/healthz").status_code == 200
            assert _until(lambda: len(inbox.messages) >= 1)
        _write(metrics, 10.0)  # a loop's first round (at start-up) would resolve the alert
        off = replace(settings, alert_loop_in_server=False)
        with TestClient(create_app(inventory, settings=off)) as client:
            assert client.get("/healthz").status_code == 200
    assert _mail(inbox) == ["[corral] FIRING: hot (1)"]
