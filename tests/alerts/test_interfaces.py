"""``corral alerts ...`` (a real process) and /api/v1/alerts (the real app) on a real database
and a DuckDB metrics file: evaluate, list, acknowledge, silence; permissions and the audit log."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from corral.config import Settings
from corral.domain.metrics import EntityKind, Sample, SampleBatch
from corral.metrics.store import DuckDBStore
from corral.services.audit import AuditLog
from corral.store.db import Database
from tests.alerts.receivers import Receiver, http_receiver
from tests.auth.conftest import World, world  # noqa: F401  (fixture)
from tests.inventory.conftest import nodes  # noqa: F401  (fixture)

SECRET = "interface-test-key"


def _metrics(path: Path) -> None:
    now = int(time.time())
    store = DuckDBStore(str(path))
    store.write(
        SampleBatch.from_samples(
            [
                Sample(EntityKind.vm, "vm-a", "kvm-01", "cpu_pct", now - 60, 99.0),
                Sample(EntityKind.vm, "vm-b", "kvm-01", "cpu_pct", now - 60, 10.0),
                Sample(EntityKind.host, "kvm-02", "kvm-02", "cpu_pct", now - 3600, 10.0),
            ]
        )
    )
    store.close()


def _files(tmp_path: Path, hook: str) -> Path:
    key = tmp_path / "hook.key"
    key.write_text(SECRET)
    key.chmod(0o600)
    _metrics(tmp_path / "metrics.duckdb")
    rules = tmp_path / "alerts.yaml"
    rules.write_text(
        "rules:\n"
        "  - {name: hot, kind: threshold, metric: cpu_pct, op: '>', value: 90}\n"
        "  - {name: gone, kind: down, entity: host, after: 10m}\n"
        f"channels:\n  - {{name: hook, type: webhook, url: '{hook}', secret_file: '{key}'}}\n"
    )
    return rules


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with http_receiver() as rx:
        yield rx


def test_cli_evaluate_list_ack_silence(db: Database, tmp_path: Path, receiver: Receiver) -> None:
    rules = _files(tmp_path, receiver.url)
    env = {
        **os.environ,
        "CORRAL_HOME": str(tmp_path / "home"),
        "CORRAL_DATABASE_URL": db.url.render_as_string(hide_password=False),
        "CORRAL_METRICS_URL": f"duckdb://{tmp_path / 'metrics.duckdb'}",
        "CORRAL_ALERT_RULES": str(rules),
    }

    def corral(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "corral", "alerts", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    assert "hook (webhook)" in corral("rules")
    out = corral("evaluate", "--inhibit", "host=kvm-02:maintenance")
    assert "2 condition(s)" in out and "sent 1, failed 0" in out  # kvm-02 is inhibited
    listed = json.loads(corral("list", "-o", "json"))
    by_rule = {a["rule"]: a for a in listed}
    assert by_rule["hot"]["state"] == "firing" and by_rule["gone"]["state"] == "firing"
    assert "ack" in corral("ack", by_rule["hot"]["id"])
    assert "silence" in corral("silence", "host=kvm-01", "--for", "1h", "--comment", "patching")
    silences = json.loads(corral("silences", "-o", "json"))
    assert silences[0]["matchers"] == "host=kvm-01"
    # the acknowledgement queued by 'ack', and kvm-02's alert, no longer inhibited
    assert "sent 2, failed 0" in corral("evaluate")
    events = [json.loads(r.body)["event"] for r in receiver.requests]
    assert events == ["firing", "acknowledged", "firing"]
    bad = subprocess.run(
        [sys.executable, "-m", "corral", "alerts", "ack", "0000000000000000"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode != 0 and "Traceback" not in bad.stderr
    assert "no alert" in bad.stderr + bad.stdout


def test_rest_routes_with_permissions_and_audit(
    world: World,  # noqa: F811
    tmp_path: Path,
    receiver: Receiver,
) -> None:
    rules = _files(tmp_path, receiver.url)
    app = world.client.app
    app.state.settings = Settings(  # type: ignore[attr-defined]
        home=tmp_path / "home",
        metrics_url=f"duckdb://{tmp_path / 'metrics.duckdb'}",
        alert_rules=rules,
    )
    app.state.metrics = None  # type: ignore[attr-defined]
    c, op = world.client, world.auth("operator")
    assert (
        c.post("/api/v1/alerts/evaluate", json={}, headers=world.auth("auditor")).status_code == 403
    )
    done = c.post("/api/v1/alerts/evaluate", json={"inhibit": ["host=kvm-02:drill"]}, headers=op)
    assert done.status_code == 200, done.text
    assert done.json() | {} == {
        "conditions": 2,
        "changed": 2,
        "notifications": 1,
        "queued": 1,
        "sent": 1,
        "failed": 0,
    }
    assert c.get("/api/v1/alerts", headers=world.auth("requester")).status_code == 403
    page = c.get("/api/v1/alerts", params={"state": "firing"}, headers=world.auth("auditor"))
    items = page.json()["items"]
    hot = next(a for a in items if a["rule"] == "hot")
    assert hot["labels"]["host"] == "kvm-01" and len(items) == 2
    acked = c.post(f"/api/v1/alerts/{hot['id']}/ack", headers=op)
    assert acked.status_code == 200 and acked.json()["acked_by"] == "operator-1"
    again = c.post(f"/api/v1/alerts/{hot['id']}/ack", headers=op)
    assert again.status_code == 409
    assert again.headers["content-type"] == "application/problem+json"
    made = c.post(
        "/api/v1/alerts/silences",
        json={"matchers": {"host": "kvm-01"}, "duration": "1h", "comment": "patch"},
        headers=op,
    )
    assert made.status_code == 201 and made.json()["created_by"] == "operator-1"
    rules_out = c.get("/api/v1/alerts/rules", headers=world.auth("requester")).json()
    assert rules_out["channels"] == ["hook (webhook)"] and SECRET not in json.dumps(rules_out)
    targets = {
        (e.action, e.target.split(":")[0], e.actor)
        for e in AuditLog(world.inventory.db).list(limit=500)
    }
    assert ("update", "alert", "operator-1") in targets
    assert ("create", "alert-silence", "operator-1") in targets
