"""On SQLite two ``corral alerts run`` processes on one machine: one evaluates, the other
stands by on the file lock beside the database file and leads once the first is killed."""

from __future__ import annotations

import os
from pathlib import Path

from tests.alerts.test_loop import RULES, Loop, _write


def test_a_second_loop_on_one_sqlite_file_stands_by_until_the_first_dies(
    tmp_path: Path,
) -> None:
    (tmp_path / "alerts.yaml").write_text(RULES)
    _write(tmp_path / "metrics.duckdb", 50.0)
    env = {
        **os.environ,
        "CORRAL_HOME": str(tmp_path / "home"),
        "CORRAL_DATABASE_URL": f"sqlite:///{tmp_path / 'corral.db'}",
        "CORRAL_METRICS_URL": f"duckdb://{tmp_path / 'metrics.duckdb'}",
        "CORRAL_ALERT_RULES": str(tmp_path / "alerts.yaml"),
    }
    loops: list[Loop] = []
    try:
        first = Loop(env)
        loops.append(first)
        first.wait_for("evaluated: 0 condition(s)")
        second = Loop(env)
        loops.append(second)
        second.wait_for("standing by: another evaluator leads")
        first.kill()
        second.wait_for("evaluated: 0 condition(s)")  # its first round as the leader
    finally:
        for loop in loops:
            loop.kill()
    assert not any("standing by" in line for line in first.lines)


def test_a_running_loop_follows_an_edited_rules_file_and_keeps_its_rules_on_a_bad_edit(
    tmp_path: Path,
) -> None:
    """The operator lowers a threshold while ``corral alerts run`` runs: the next round fires
    on it without a restart. A broken edit is reported and the rules in force stay."""
    rules = tmp_path / "alerts.yaml"
    rules.write_text(RULES)  # cpu_pct > 90
    _write(tmp_path / "metrics.duckdb", 50.0)
    env = {
        **os.environ,
        "CORRAL_HOME": str(tmp_path / "home"),
        "CORRAL_DATABASE_URL": f"sqlite:///{tmp_path / 'corral.db'}",
        "CORRAL_METRICS_URL": f"duckdb://{tmp_path / 'metrics.duckdb'}",
        "CORRAL_ALERT_RULES": str(rules),
    }
    loop = Loop(env)
    try:
        loop.wait_for("evaluated: 0 condition(s)")
        rules.write_text(RULES.replace("value: 90", "value: 40"))
        took = loop.wait_for("rules and facts read again")
        assert "evaluated: 1 condition(s), 1 alert(s) changed" in took
        seen = len(loop.lines)
        rules.write_text("rules: [unclosed\n")
        refused = loop.wait_for("the rules in force stay", after=seen)
        assert "evaluated: 1 condition(s), 0 alert(s) changed" in refused
        after = loop.wait_for("evaluated:", after=loop.lines.index(refused) + 1)
        assert "evaluated: 1 condition(s)" in after and "not taken" not in after  # said once
    finally:
        loop.kill()
