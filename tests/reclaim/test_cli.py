"""``corral reclaim`` in a real subprocess: the whole way, the JSON contract, one-line errors.

The CLI runs on the real clock, so the policy file sets every waiting period to
zero days; e-mail goes to a real SMTP server (aiosmtpd) and is checked there.
"""

from __future__ import annotations

import csv
import io
import json
import os
import socket
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from corral.config import Settings
from corral.engines.reclaim import load_policy, parse_policy
from corral.inventory.service import Inventory
from tests.freshdb import migrated_home
from tests.reclaim.conftest import Inbox

CORRAL = [sys.executable, "-m", "corral"]
NO_WAIT = "notice_days: 0\nquarantine_days: 0\ncooling_off_days: 0\n"


class Cli:
    """Runs corral against one CORRAL_HOME with test-driver hosts and a mail server."""

    def __init__(self, home: Path, env: dict[str, str]) -> None:
        self.home = home
        self.env = env

    def __call__(self, *args: str, code: int = 0) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [*CORRAL, *args], capture_output=True, text=True, env=self.env, timeout=120
        )
        assert proc.returncode == code, (args, proc.returncode, proc.stdout, proc.stderr)
        return proc

    def json(self, *args: str, code: int = 0) -> Any:
        return json.loads(self(*args, "--output", "json", code=code).stdout)

    def fails(self, *args: str, code: int = 2) -> str:
        """A user error (2 bad input, 3 not found, 4 conflict): nothing on stdout, one line
        on stderr."""
        proc = self(*args, code=code)
        assert proc.stdout == ""
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
        return lines[0]


def _env(home: Path, smtp_port: int, policy: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("CORRAL_") or k in ("CORRAL_SHARED_DATA", "CORRAL_SECRET_KEY")
    }
    return {
        **env,
        "CORRAL_HOME": str(home),
        "CORRAL_SMTP_URL": f"smtp://127.0.0.1:{smtp_port}",
        "CORRAL_MAIL_FROM": "corral@example.test",
        "CORRAL_MAIL_DOMAIN": "example.test",
        "CORRAL_MAIL_FALLBACK": "admins@example.test",
        "CORRAL_RECLAIM_POLICY": str(policy),
        "CORRAL_NODE_DIR": str(home.parent),  # the node files sit beside the home
        "USER": "ops",
    }


@pytest.fixture
def cli(tmp_path: Path, nodes: Path, smtp: tuple[Inbox, Any]) -> Cli:
    _, settings = smtp
    policy = tmp_path / "reclaim.yaml"
    policy.write_text(NO_WAIT, encoding="utf-8")
    home = tmp_path / "home"
    _register_hosts(home, nodes)
    return Cli(home, _env(home, settings.port, policy))


def _register_hosts(home: Path, nodes: Path) -> None:
    """The two test-driver hosts, synced, in the home's database (in-process: faster)."""
    migrated_home(home)
    settings = Settings(home, f"sqlite:///{home / 'corral.db'}", node_dir=home.parent)
    inv = Inventory.from_settings(settings)
    inv.add_host("a", f"test://{nodes / 'host-a.xml'}")
    inv.add_host("b", f"test://{nodes / 'host-b.xml'}")
    inv.sync()
    inv.db.dispose()


def _steps(cli: Cli) -> list[tuple[str, str]]:
    return [(o["step"], o["result"]) for o in cli.json("reclaim", "run")["outcomes"]]


def test_whole_way_to_deletion(cli: Cli, smtp: tuple[Inbox, Any]) -> None:
    inbox, _ = smtp
    case = cli.json("reclaim", "flag", "web-01", "--category", "idle", "--reason", "idle 30 days")
    assert (case["state"], case["flagged_by"], case["owner"]) == ("flagged", "ops", "alice")
    cid = case["id"]

    run = cli("reclaim", "run")
    assert "notify" in run.stdout and "E-mail: SMTP 127.0.0.1:" in run.stdout
    (notice,) = inbox.for_case(cid, "notify")
    assert notice["To"] == "alice@example.test" and "web-01" in notice["Subject"]

    assert _steps(cli) == [("quarantine", "done")]
    vm = cli.json("vm", "show", "web-01")
    assert vm["state"] == "shutoff" and "reclaim:quarantined" in vm["tags"]
    assert inbox.for_case(cid, "quarantine")
    assert _steps(cli) == [("archive", "done")]
    (waiting,) = cli.json("reclaim", "run")["outcomes"]
    assert waiting["result"] == "waiting" and "approval" in waiting["detail"]

    assert "cannot also approve" in cli.fails("reclaim", "approve", str(cid), "delete")
    approved = cli.json("reclaim", "approve", str(cid), "delete", "--as", "manager", "--note", "ok")
    assert approved["state"] == "archived"
    dry = cli.json("reclaim", "run", "--dry-run")
    assert dry["dry_run"] and dry["outcomes"][0]["result"] == "would-do"
    assert _steps(cli) == [("delete", "done")]
    assert inbox.for_case(cid, "delete")

    shown = cli.json("reclaim", "show", str(cid))
    assert shown["state"] == "deleted" and shown["deleted_volumes"]
    assert [(a["step"], a["approver"], a["note"]) for a in shown["approvals"]] == [
        ("delete", "manager", "ok")
    ]
    assert [e["kind"] for e in shown["history"]] == [
        "reclaim-flagged",
        "reclaim-notified",
        "quarantined",
        "archived",
        "reclaim-approved",
        "reclaim-deleted",
    ]
    assert cli.json("vm", "show", shown["vm_uuid"])["deleted_at"] is not None
    savings = cli.json("reclaim", "savings")
    assert savings["monthly_now"] == pytest.approx(shown["monthly_cost"])
    assert [c["id"] for c in savings["cases"]] == [cid]
    table = cli("reclaim", "savings").stdout
    assert f"{shown['monthly_cost']:,.2f} {shown['currency']}" in table and "total" in table


def test_quarantine_then_restore(cli: Cli, smtp: tuple[Inbox, Any]) -> None:
    inbox, _ = smtp
    before = cli.json("vm", "show", "cache-01")
    cid = cli.json("reclaim", "flag", "cache-01", "-c", "manual", "-r", "nobody uses it")["id"]
    assert _steps(cli) == [("notify", "done")]
    (notice,) = inbox.for_case(cid, "notify")
    assert notice["To"] == "admins@example.test"  # no owner: the fallback address
    assert _steps(cli) == [("quarantine", "done")]
    assert cli.json("vm", "show", "cache-01")["state"] == "shutoff"
    listed = cli.json("reclaim", "list", "--open")
    assert [(c["id"], c["state"]) for c in listed] == [(cid, "quarantined")]

    restored = cli.json("reclaim", "restore", str(cid), "--as", "alice")
    assert restored["state"] == "restored"
    after = cli.json("vm", "show", "cache-01")
    assert (after["state"], after["tags"], after["autostart"]) == (
        "running",
        before["tags"],
        before["autostart"],
    )
    assert inbox.for_case(cid, "restore")
    assert cli.json("reclaim", "list", "--open") == []
    rows = list(csv.DictReader(io.StringIO(cli("reclaim", "list", "-o", "csv").stdout)))
    assert [(r["id"], r["vm"], r["state"]) for r in rows] == [(str(cid), "cache-01", "restored")]
    assert "cannot restore a case that is restored" in cli.fails(
        "reclaim", "restore", str(cid), code=4
    )


def test_bad_input_is_one_line_and_exit_2(cli: Cli) -> None:
    cid = str(cli.json("reclaim", "flag", "web-01", "-c", "idle", "-r", "idle")["id"])
    assert "no reclamation case 99" in cli.fails("reclaim", "show", "99", code=3)
    assert "not a case number" in cli.fails("reclaim", "confirm", "first")
    assert "YYYY-MM-DD" in cli.fails("reclaim", "extend", cid, "--until", "2026-13-01", "-r", "x")
    assert "--until is required" in cli.fails("reclaim", "extend", cid, "--reason", "x")
    assert "not a step" in cli.fails("reclaim", "approve", cid, "publish", "--as", "boss")
    assert "needs a reason" in cli.fails("reclaim", "cancel", cid)
    assert "needs a reason" in cli.fails("reclaim", "flag", "db-01", "-c", "idle")
    assert "--category must be one of" in cli.fails("reclaim", "flag", "db-01", "-c", "idel")
    assert "--state must be one of" in cli.fails("reclaim", "list", "--state", "gone")
    assert "already has an open" in cli.fails(
        "reclaim", "flag", "web-01", "-c", "idle", "-r", "x", code=4
    )
    assert "snapshot sprawl" in cli.fails("reclaim", "flag-findings", "-c", "snapshot_sprawl")
    (case,) = cli.json("reclaim", "list")
    assert case["state"] == "flagged"  # nothing was changed by any of it


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_run_exits_1_when_a_step_failed(cli: Cli) -> None:
    cli.json("reclaim", "flag", "web-01", "-c", "idle", "-r", "idle")
    cli.env = {**cli.env, "CORRAL_SMTP_URL": f"smtp://127.0.0.1:{_closed_port()}"}
    proc = cli("reclaim", "run", "--output", "json", code=1)
    (failed,) = json.loads(proc.stdout)["outcomes"]
    assert failed["result"] == "failed" and "cannot reach the mail server" in failed["detail"]
    assert "Exit status 1 when any step failed" in " ".join(
        cli("reclaim", "run", "--help").stdout.split()
    )


def test_flag_findings_skips_held_vms(cli: Cli) -> None:
    cli("vm", "set", "web-01", "--expires", "2026-01-01")  # the lease ran out: a waste finding
    dry = cli.json("reclaim", "flag-findings", "--dry-run")
    assert [(f["vm"], f["category"], f["result"]) for f in dry["findings"]] == [
        ("web-01", "lease_expired", "would-flag")
    ]
    assert cli.json("reclaim", "list") == []
    assert cli.json("reclaim", "flag-findings", "--min-monthly", "1000000")["findings"] == []

    done = cli.json("reclaim", "flag-findings", "--category", "lease_expired", "--as", "bot")
    (row,) = done["findings"]
    assert row["result"] == "flagged" and done["summary"].startswith("1 flagged, 0 skipped")
    case = cli.json("reclaim", "show", str(row["case"]))
    assert (case["category"], case["flagged_by"]) == ("lease_expired", "bot")
    assert case["evidence"]["expiry"].startswith("2026-01-01")
    assert "days_overdue" in case["evidence"] and "lease expired" in case["reason"]

    again = cli.json("reclaim", "flag-findings")
    assert [f["skipped_because"] for f in again["findings"]] == ["open case"]
    assert again["summary"] == "0 flagged, 1 skipped (1: open case)"

    cli("reclaim", "run")  # notified: the owner keeps it
    until = (date.today() + timedelta(days=100)).isoformat()
    kept = cli.json("reclaim", "extend", str(row["case"]), "--until", until, "-r", "year end")
    assert (kept["state"], kept["extended_until"]) == ("extended", until)
    assert cli.json("vm", "show", "web-01")["expires_on"] == until
    cli("vm", "set", "web-01", "--expires", "2026-01-01")  # someone sets the old date back
    held = cli.json("reclaim", "flag-findings")
    assert [f["skipped_because"] for f in held["findings"]] == ["extension in force"]
    table = cli("reclaim", "flag-findings").stdout
    assert "0 flagged, 1 skipped (1: extension in force)" in table


def test_policy_prints_the_effective_yaml_and_its_source(cli: Cli, tmp_path: Path) -> None:
    out = cli("reclaim", "policy").stdout
    first, _, rest = out.partition("\n")
    assert first == f"# reclamation policy from: {tmp_path / 'reclaim.yaml'}"
    doc = yaml.safe_load(rest)
    assert (doc["notice_days"], doc["quarantine_days"], doc["cooling_off_days"]) == (0, 0, 0)
    assert parse_policy(doc) == load_policy(tmp_path / "reclaim.yaml")  # it reads back the same
    cli.env = {k: v for k, v in cli.env.items() if k != "CORRAL_RECLAIM_POLICY"}
    out = cli("reclaim", "policy").stdout
    assert out.startswith("# reclamation policy from: defaults\n")
    assert yaml.safe_load(out)["notice_days"] == 14


def test_run_every_keeps_going_until_stopped(cli: Cli, smtp: tuple[Inbox, Any]) -> None:
    """`run --every` is a long-running scheduler: two cycles seen, then it is stopped."""
    inbox, _ = smtp
    cid = cli.json("reclaim", "flag", "web-01", "--category", "idle", "--reason", "idle")["id"]
    proc = subprocess.Popen(
        [*CORRAL, "reclaim", "run", "--every", "10", "--output", "json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli.env,
    )
    try:
        assert proc.stdout is not None
        first = json.loads(proc.stdout.readline())
        second = json.loads(proc.stdout.readline())
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert [o["step"] for o in first["outcomes"]] == ["notify"]
    assert [o["step"] for o in second["outcomes"]] == ["quarantine"]
    assert inbox.for_case(cid, "notify") and inbox.for_case(cid, "quarantine")
