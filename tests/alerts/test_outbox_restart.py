"""A notification survives the death of the process that decided it: ``corral alerts
evaluate`` killed with SIGKILL after deciding and before one channel was sent; the next run
sends it, exactly once per channel, and a third run sends nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import select

from corral.domain.metrics import EntityKind, Sample, SampleBatch
from corral.metrics.store import DuckDBStore
from corral.store import models as m
from corral.store.db import Database
from tests.alerts.receivers import black_hole, http_receiver

RULES = """
rules:
  - {{name: hot, kind: threshold, metric: cpu_pct, op: '>', value: 90}}
channels:
  - {{name: a-first, type: webhook, url: '{a}', secret_file: '{secret}', timeout: 60}}
  - {{name: b-second, type: webhook, url: '{b}', secret_file: '{secret}'}}
"""


def _write_metrics(path: Path) -> None:
    now = int(time.time())
    store = DuckDBStore(str(path))
    store.write(
        SampleBatch.from_samples(
            [Sample(EntityKind.vm, "vm-a", "kvm-01", "cpu_pct", now - 60, 99.0)]
        )
    )
    store.close()


def _env(db: Database, tmp_path: Path) -> dict[str, str]:
    secret = tmp_path / "hook.key"
    secret.write_text("restart-test-key")
    secret.chmod(0o600)
    _write_metrics(tmp_path / "metrics.duckdb")
    return {
        **os.environ,
        "CORRAL_HOME": str(tmp_path / "home"),
        "CORRAL_DATABASE_URL": db.url.render_as_string(hide_password=False),
        "CORRAL_METRICS_URL": f"duckdb://{tmp_path / 'metrics.duckdb'}",
        "CORRAL_ALERT_RULES": str(tmp_path / "alerts.yaml"),
    }


def _rules(tmp_path: Path, a: str, b: str) -> None:
    text = RULES.format(a=a, b=b, secret=tmp_path / "hook.key")
    (tmp_path / "alerts.yaml").write_text(text)


def _sent(db: Database) -> dict[str, float | None]:
    with db.session() as s:
        rows = s.execute(select(m.AlertOutboxRow.channel, m.AlertOutboxRow.sent_at)).all()
    return {channel: sent for channel, sent in rows}


def _evaluate(env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "corral", "alerts", "evaluate"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_killed_between_deciding_and_sending_then_sent_once_after_restart(
    db: Database, tmp_path: Path
) -> None:
    env = _env(db, tmp_path)
    with http_receiver() as b, http_receiver() as a_later, black_hole() as a_hanging:
        _rules(tmp_path, a_hanging, b.url)
        proc = _evaluate(env)
        assert b.got.wait(60), "the live channel was not sent"
        for _ in range(600):  # b is marked sent; a hangs in its send
            if _sent(db).get("b-second") is not None or proc.poll() is not None:
                break
            time.sleep(0.05)
        assert proc.poll() is None, proc.communicate()[0]
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        assert _sent(db)["a-first"] is None  # decided, never sent

        _rules(tmp_path, a_later.url, b.url)  # the endpoint is back (same channel name)
        again = _evaluate(env)
        out = again.communicate(timeout=120)[0]
        assert again.returncode == 0, out
        assert "0 notification(s)" in out and "sent 1, failed 0" in out
        third = _evaluate(env)
        out3 = third.communicate(timeout=120)[0]
        assert third.returncode == 0 and "sent 0, failed 0" in out3, out3

    assert len(b.requests) == 1 and len(a_later.requests) == 1
    assert json.loads(a_later.requests[0].body)["event"] == "firing"
    assert a_later.requests[0].body == b.requests[0].body  # the same decided message
    assert all(v is not None for v in _sent(db).values())
