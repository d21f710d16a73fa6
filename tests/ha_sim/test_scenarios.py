"""Every simulator scenario against its expected event log (tests/ha_sim/scenarios/*.log).

The test never writes an expectation: regenerate one with
``corral ha simulate tests/ha_sim/scenarios/NAME.yaml --write-expected`` and review the diff.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from corral.cli.main import app
from corral.errors import ValidationError
from corral.services import ha_sim

SCENARIOS = Path(__file__).resolve().parent / "scenarios"
FILES = sorted(SCENARIOS.glob("*.yaml"))


def test_at_least_thirty_scenarios() -> None:
    assert len(FILES) >= 30


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_scenario_log(path: Path) -> None:
    expected = ha_sim.expected_log_path(path)
    assert expected.is_file(), f"no expected log for {path.name}; run it with --write-expected"
    result = ha_sim.run(path)
    assert result.log() == expected.read_text(encoding="utf-8")
    assert result.violations == ()


def _kinds(name: str) -> list[tuple[str, str | None, str | None]]:
    return [(e.kind, e.host, e.vm) for e in ha_sim.run(SCENARIOS / f"{name}.yaml").events]


def test_isolated_host_is_never_fenced() -> None:
    kinds = [k for k, _, _ in _kinds("isolation_keeps_vms")]
    assert "host_isolated" in kinds
    assert not {"fence_begin", "vm_start"} & set(kinds)


def test_unfenceable_host_is_not_recovered_from() -> None:
    kinds = [k for k, _, _ in _kinds("fence_failure_unfenceable")]
    assert "host_unfenceable" in kinds and "vm_start" not in kinds


def test_manager_restart_starts_each_vm_once() -> None:
    starts = [vm for k, _, vm in _kinds("manager_loss_while_starting") if k == "vm_start"]
    assert sorted(starts) == ["db", "web"]


def test_cli_json_output() -> None:
    result = CliRunner().invoke(
        app, ["ha", "simulate", str(SCENARIOS / "host_loss.yaml"), "--output", "json"]
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["final"]["db"] == {"state": "running", "host": "H3"}
    assert doc["final"]["batch"] == {"state": "down_unprotected", "host": None}
    assert doc["violations"] == []
    assert doc["plan"]["H1"] == {"db": "H3", "web": "H2"}
    assert any(e["kind"] == "host_fenced" for e in doc["events"])


def test_cli_writes_expected(tmp_path: Path) -> None:
    copy = tmp_path / "s.yaml"
    copy.write_text((SCENARIOS / "brief_blip.yaml").read_text())
    result = CliRunner().invoke(app, ["ha", "simulate", str(copy), "--write-expected"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "s.log").read_text() == (SCENARIOS / "brief_blip.log").read_text()


def test_bad_scenario_is_one_sentence(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text((SCENARIOS / "host_loss.yaml").read_text().replace("do: crash", "do: explode"))
    with pytest.raises(ValidationError, match="explode"):
        ha_sim.run(bad)


@pytest.mark.parametrize(
    ("old", "new", "words"),
    [
        ("events:\n", "ha:\n  depends_on: {db: [web], web: [db]}\nevents:\n", "cycle"),
        ("events:\n", "ha:\n  depends_on: {db: [nosuch]}\nevents:\n", "nosuch"),
        ("events:\n", "sim:\n  hosts: {H9: {fence: [ok]}}\nevents:\n", "H9"),
        ("events:\n", "sim:\n  hosts: {H1: {fence: [maybe]}}\nevents:\n", "maybe"),
        ("events:\n", "sim:\n  vms: {db: {explode: 1}}\nevents:\n", "explode"),
        ("events:\n", "plan: {H1: {db: H7}}\nevents:\n", "H7"),
        ("events:\n", "config: {grace: 3}\nevents:\n", "grace"),
        ("do: crash, host: H1", "do: maintenance_enter", "needs the name of a host"),
        ("do: crash, host: H1", "do: manager_stop, host: H1", "takes no host"),
        ("do: crash, host: H1", "do: load, host: H2", "memory_mib, name, vcpus"),
        ("do: crash, host: H1", "do: fence, host: H2, outcomes: [boom]", "ok, fail or hang"),
        ("at: 20", "at: soon", "number of seconds"),
    ],
)
def test_scenario_mistakes_are_named(tmp_path: Path, old: str, new: str, words: str) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text((SCENARIOS / "host_loss.yaml").read_text().replace(old, new, 1))
    with pytest.raises(ValidationError, match=words):
        ha_sim.load_scenario(bad)


def _final_hosts(name: str) -> dict[str, str | None]:
    return {vm: on for vm, (_, on) in ha_sim.run(SCENARIOS / f"{name}.yaml").final.items()}


def test_abort_cancels_the_migration_in_flight_and_starts_no_more() -> None:
    events = _kinds("maintenance_abort")
    begun = [vm for k, _, vm in events if k == "migration_begin"]
    assert begun == ["db", "web"]  # cache never began
    assert ("migration_cancel", "H1", "web") in events
    assert ("host_maintenance_exit", "H1", None) in events
    assert _final_hosts("maintenance_abort") == {
        "cache": "H1", "db": "H3", "dns": "H2", "web": "H1"
    }  # fmt: skip


def test_a_host_dying_mid_migration_leaves_each_vm_on_one_host_and_the_run_entering() -> None:
    for name, vm, lost in (
        ("maintenance_target_dies", "db", "H2"),
        ("maintenance_source_dies", "web", "H1"),
    ):
        result = ha_sim.run(SCENARIOS / f"{name}.yaml")
        [end] = [e for e in result.events if e.kind == "evacuation_end"]
        assert end.detail.startswith("entering:"), (name, end)
        assert any(e.kind == "migration_failed" and e.vm == vm for e in result.events)
        assert not any(e.kind == "host_maintenance_exit" for e in result.events)
        assert any(e.kind == "host_fenced" and e.host == lost for e in result.events)
        assert result.final[vm][0] == "running" and result.final[vm][1] not in (None, lost)
        assert result.violations == ()
