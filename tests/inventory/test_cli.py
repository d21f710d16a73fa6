"""The CLI end to end, in a real subprocess: contract output, errors as one sentence, the demo."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.freshdb import migrated_home

CORRAL = [sys.executable, "-m", "corral"]


def run(
    home: Path, *args: str, ok: bool = True, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CORRAL_HOME": str(home), "CORRAL_NODE_DIR": str(home.parent)}
    env.pop("CORRAL_DATABASE_URL", None)
    proc = subprocess.run(
        [*CORRAL, *args], capture_output=True, text=True, env=env, input=stdin, timeout=120
    )
    if ok:
        assert proc.returncode == 0, proc.stderr
    return proc


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A home already migrated, as the CLI's first run leaves it (the demo's test keeps a bare
    home: its first run makes the database)."""
    return migrated_home(tmp_path / "home")


def test_hosts_sync_and_vms_json_contract(home: Path, nodes: Path) -> None:
    run(home, "hosts", "add", "host-a", f"test://{nodes / 'host-a.xml'}")
    run(home, "sync")
    vms = json.loads(run(home, "vms", "--output", "json").stdout)
    assert len(vms) == 3
    for vm in vms:
        assert {"uuid", "name", "host", "state", "vcpus", "memory_mib", "owner"} <= set(vm)
    web = next(v for v in vms if v["name"] == "web-01")
    assert (web["host"], web["state"], web["vcpus"], web["memory_mib"], web["owner"]) == (
        "host-a",
        "running",
        2,
        4096,
        "alice",
    )
    rows = list(csv.DictReader(io.StringIO(run(home, "vms", "--no-owner", "-o", "csv").stdout)))
    assert sorted(r["name"] for r in rows) == ["db-01", "old-build"]
    table = run(home, "vms", "--state", "shutoff").stdout
    assert "old-build" in table and "web-01" not in table


def test_vm_set_show_and_export(home: Path, nodes: Path, tmp_path: Path) -> None:
    run(home, "hosts", "add", "host-a", f"test://{nodes / 'host-a.xml'}")
    run(home, "sync")
    run(
        home,
        "vm",
        "set",
        "old-build",
        "--owner",
        "bob",
        "--purpose",
        "nightly builds",
        "--tags",
        "ci,build",
    )
    shown = json.loads(run(home, "vm", "show", "old-build", "-o", "json").stdout)
    assert shown["owner"] == "bob" and shown["tags"] == ["build", "ci"]
    assert shown["history"][-1]["kind"] == "metadata-changed"
    out = tmp_path / "export"
    run(home, "export", str(out), "--format", "csv")
    assert sorted(p.name for p in out.iterdir()) == [
        "disks.csv",
        "hosts.csv",
        "snapshots.csv",
        "vms.csv",
        "volumes.csv",
    ]
    vms = list(csv.DictReader((out / "vms.csv").open()))
    assert len(vms) == 3
    assert any(
        r["name"] == "forgotten.qcow2" and r["orphaned"] == "True"
        for r in csv.DictReader((out / "volumes.csv").open())
    )


@pytest.mark.parametrize(
    ("args", "message", "code"),
    [
        (["hosts", "add", "x", "vmware://esx/"], "unsupported libvirt URI scheme", 2),
        (["hosts", "add", "x", "test:///no/such/node.xml"], "must be inside", 2),
        (["hosts", "add", "x", "qemu+ext:///system?command=/bin/true"], "unsupported libvirt", 2),
        (["vm", "show", "no-such-vm"], "no VM named", 3),
        (["vms", "--sort", "password"], "cannot sort by", 2),
        (["hosts", "remove", "ghost"], "no host named", 3),
    ],
)
def test_errors_are_one_sentence_without_traceback(
    home: Path, args: list[str], message: str, code: int
) -> None:
    proc = run(home, *args, ok=False)
    assert proc.returncode == code
    assert "Traceback" not in proc.stderr
    assert proc.stderr.startswith("error: ") and message in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_password_is_read_from_stdin_and_never_printed(home: Path) -> None:
    proc = run(
        home,
        "hosts",
        "add",
        "remote",
        "qemu+tcp://kvm-9.example.invalid/system",
        "--username",
        "admin",
        "--password-stdin",
        "-o",
        "json",
        stdin="pa55word\n",
    )
    assert "pa55word" not in proc.stdout + proc.stderr
    assert json.loads(proc.stdout)["has_credentials"] is True
    listing = run(home, "hosts", "list", "-o", "json").stdout
    assert "pa55word" not in listing


def test_token_create_list_revoke(home: Path) -> None:
    token = run(home, "token", "create", "bot").stdout.strip()
    assert token.startswith("crl_")
    listed = json.loads(run(home, "token", "list", "-o", "json").stdout)
    assert listed[0]["name"] == "bot" and token not in json.dumps(listed)
    run(home, "token", "revoke", "bot")
    assert json.loads(run(home, "token", "list", "-o", "json").stdout)[0]["revoked_at"]


def test_demo_no_serve_builds_a_realistic_fleet(tmp_path: Path) -> None:
    home = tmp_path / "home"
    proc = run(home, "demo", "--no-serve", "--history-days", "2", "--output", "json")
    info = json.loads(proc.stdout)
    fleet = info["fleet"]
    assert len(info["hosts"]) == 6
    assert fleet["vms"] + fleet["deleted_vms_tombstoned"] == 150
    assert fleet["running"] > fleet["powered_off"] > 0
    assert fleet["powered_off_90d"] > 0 and fleet["templates"] > 0 and fleet["no_owner"] > 0
    assert fleet["snapshots_older_90d"] > 0 and fleet["orphaned_volumes"] > 0
    assert {"created", "deleted", "migrated", "stopped", "snapshot-taken"} <= set(info["events"])
    # the demo's reclamation: one VM through every step and back, one deleted, ten e-mailed
    rec = info["reclamation"]
    walked = [(r["step"], r["case state"], r["vm state"]) for r in rec["walkthrough"]]
    assert walked[3:5] == [("archive", "archived", "shutoff"), ("restore", "restored", "running")]
    assert walked[-1] == ("approve + delete", "deleted", "deleted")
    assert rec["flagged"] == rec["notified"] == 10
    cases = json.loads(run(home, "reclaim", "list", "-o", "json").stdout)
    (deleted,) = [c for c in cases if c["state"] == "deleted"]
    vms = json.loads(run(home, "vms", "-o", "json").stdout)
    assert len(vms) == fleet["vms"] - 1 + 1  # one reclaimed, one made by the self-service walk
    walk = info["self_service"]
    assert walk["state"] == "provisioned" and walk["reason"] == "", walk
    (made,) = [v for v in vms if v["name"] == f"demo-tiny-r{walk['request']}-1"]
    assert made["state"] == "running" and made["department"] == walk["department"]
    # a history replayed from the real Bitbrains traces: 2 days of 5-minute samples per VM
    assert info["metrics"]["vms"] == fleet["running"]
    assert info["metrics"]["samples"] >= fleet["running"] * 2 * 288
    sprawl = info["sprawl"]
    assert sprawl["vms"] == fleet["vms"] - fleet["templates"]
    assert sprawl["waste_yearly"] > 0 and sprawl["by_category"]["powered_off"]["count"] > 0
    assert sprawl["by_category"]["orphaned_disk"]["count"] == fleet["orphaned_volumes"]
    report = json.loads(run(home, "sprawl", "report", "--days", "2", "-o", "json").stdout)
    # the deleted VM's money is no longer waste; nothing else changed
    after = report["summary"]["waste_monthly"]
    assert after == pytest.approx(sprawl["waste_monthly"] - deleted["monthly_cost"], abs=0.05)
    assert report["findings"] and all(f["monthly"] >= 0 for f in report["findings"])
    top = json.loads(
        run(home, "metrics", "top", "cpu_pct", "-n", "3", "--start", "-1d", "-o", "json").stdout
    )
    assert len(top) == 3 and all(t["name"] for t in top)  # the demo's VMs, by name
    busiest = top[0]["name"]
    series = run(home, "metrics", "series", busiest, "cpu_pct", "--start", "-1d", "-o", "json")
    assert json.loads(series.stdout)  # a VM's history asked by its name
    # the same seed gives the same fleet; re-running replaces the demo instead of doubling it
    again = json.loads(run(home, "demo", "--no-serve", "--history-days", "0", "-o", "json").stdout)
    assert again["fleet"] == fleet
