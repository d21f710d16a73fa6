"""The backup policy: shipped tiers, a YAML file through the bounded loader, per-VM overrides,
and one clear sentence for every mistake in the file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from corral.cli import context
from corral.cli.main import app as cli_app
from corral.config import Settings
from corral.engines.backup import Consistency, Policy, RestoreFrom, Retention, parse_policy
from corral.errors import ConfigError, NotFoundError, ValidationError
from corral.services import backup

FLEETS = Path(__file__).resolve().parents[1] / "fixtures" / "fleets"

POLICY = """
default_tier: backup-only
planner: {job_mib_s: 50, change_per_day: 0.02}
tiers:
  gold:
    extends: replicated
    rpo: 30m
    retention: {keep_last: 10, yearly: 3}
  restart:
    rto: 2d
  archive:
    rpo: 1w
    window: "23:00-05:00"
vms:
  db-01: {tier: gold, consistency: crash}
  web-01: {rpo: 2h}
"""


def test_the_shipped_tiers_cover_the_inventorys_tiers() -> None:
    policy = Policy()
    assert set(policy.tiers) == {"replicated", "restart", "backup-only", "none"}
    assert policy.tiers["replicated"].rpo_minutes == 60
    assert policy.tiers["replicated"].where is RestoreFrom.local  # RTO 1 h: keep a copy at hand
    assert policy.tiers["none"].rebuild is not None and not policy.tiers["none"].backed_up
    eff = policy.for_vm("nameless", None)
    assert (eff.tier, eff.origin) == ("restart", "default tier")


def test_a_file_changes_tiers_adds_tiers_and_overrides_vms() -> None:
    import yaml

    policy = parse_policy(yaml.safe_load(POLICY), "p.yaml")
    gold = policy.tiers["gold"]
    assert gold.rpo_minutes == 30 and gold.rto_minutes == 60  # rto inherited from replicated
    assert gold.consistency is Consistency.application
    assert gold.retention == Retention(keep_last=10, yearly=3)
    assert policy.tiers["restart"].where is RestoreFrom.offsite  # RTO of two days
    assert policy.tiers["archive"].rpo_minutes == 7 * 1440
    assert str(policy.tiers["archive"].window) == "23:00-05:00"
    assert policy.planner.job_mib_s == 50 and policy.planner.host_mib_s == 200
    db = policy.for_vm("db-01", "restart")
    assert (db.tier, db.origin, db.rules.consistency) == ("gold", "vm override", Consistency.crash)
    web = policy.for_vm("web-01", None)
    assert (web.tier, web.origin, web.rules.rpo_minutes) == ("backup-only", "vm override", 120)
    assert policy.for_vm("other", "restart").origin == "tier"


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("tiers: {gold: {rpo: soon}}", "tiers.gold.rpo must be a duration such as 30m"),
        ("tiers: {gold: {rpo: 1m}}", "tiers.gold.rpo must be at least 5 minutes"),
        ("tiers: {gold: {rpoo: 1h}}", "tiers.gold: unknown key 'rpoo'"),
        ("tiers: {gold: {consistency: fuzzy}}", "consistency must be one of crash, application"),
        ("tiers: {gold: {window: '25:00-01:00'}}", "is not a span of the day"),
        ("tiers: {gold: {retention: {daily: -1}}}", "retention.daily must be a whole number"),
        ("tiers: {gold: {extends: platinum}}", "extends 'platinum', which is not a tier"),
        ("vms: {db: {tier: platinum}}", "vms.db.tier 'platinum' is not a tier"),
        ("default_tier: platinum", "default_tier 'platinum' is not a tier"),
        ("planner: {job_mib_s: 0}", "planner.job_mib_s must be a positive whole number"),
        ("bogus: 1", "unknown key 'bogus'"),
        ("- a list", "must be a mapping"),
    ],
)
def test_every_mistake_is_one_sentence_naming_its_place(
    tmp_path: Path, text: str, says: str
) -> None:
    path = tmp_path / "backup.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        backup.load_policy(Settings(home=tmp_path, backup_policy=path))
    assert says in err.value.message and str(path) in err.value.message


def test_a_yaml_bomb_is_refused_before_it_expands(tmp_path: Path) -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    path = tmp_path / "backup.yaml"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ConfigError, match="expands to more than"):
        backup.load_policy(Settings(home=tmp_path, backup_policy=path))


def test_a_named_file_must_exist_an_unnamed_one_may_not(tmp_path: Path) -> None:
    assert backup.load_policy(Settings(home=tmp_path)).source == "built-in defaults"
    with pytest.raises(NotFoundError, match="CORRAL_BACKUP_POLICY"):
        backup.load_policy(Settings(home=tmp_path, backup_policy=tmp_path / "none.yaml"))
    (tmp_path / "backup.yaml").write_text("default_tier: none\n")  # $CORRAL_HOME/backup.yaml
    assert backup.load_policy(Settings(home=tmp_path)).default_tier == "none"


def test_a_vm_of_a_tier_the_policy_lacks_is_named() -> None:
    with pytest.raises(ValidationError, match="protection tier 'platinum'"):
        Policy().for_vm("db", "platinum")


def test_cli_shows_the_effective_policy_per_tier_and_vm(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY)
    monkeypatch.setenv("CORRAL_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CORRAL_BACKUP_POLICY", str(path))
    context.settings.cache_clear()
    fleet = str(FLEETS / "backup_small.yaml")
    args = ["backup", "policy", "-f", fleet, "-o", "json"]
    result = CliRunner().invoke(cli_app, args, catch_exceptions=False)
    context.settings.cache_clear()
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["source"] == f"backup policy {path}"
    tiers = {t["tier"]: t for t in doc["tiers"]}
    assert tiers["gold"]["rpo_minutes"] == 30 and tiers["archive"]["window"] == "23:00-05:00"
    vms = {v["vm"]: v for v in doc["vms"]}
    assert vms["db-01"] == {
        "vm": "db-01", "tier": "gold", "origin": "vm override", "rpo_minutes": 30,
        "rto_minutes": 60, "restore_from": "local", "consistency": "crash", "backed_up": True,
    }  # fmt: skip
    assert vms["build-01"]["backed_up"] is False  # tier none: rebuilt from its template
    assert "spare-01" not in vms  # no host: listed by coverage instead


def test_cli_names_a_bad_policy_file_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text("tiers: {gold: {rpo: soon}}\n")
    env = {**os.environ, "CORRAL_HOME": str(tmp_path / "home"), "CORRAL_BACKUP_POLICY": str(path)}
    done = subprocess.run(
        [sys.executable, "-m", "corral", "backup", "policy"],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "tiers.gold.rpo must be a duration" in done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
