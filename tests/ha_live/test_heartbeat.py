"""The storage heartbeat writer, and the live environment reading what it writes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from corral.engines.planning.model import Fleet, Host
from corral.errors import ConfigError, ValidationError
from corral.services.ha_fencing import FenceRunner
from corral.services.ha_heartbeat import HeartbeatWriter
from corral.services.ha_live_env import LiveEnvironment


def _env(folder: Path, max_age_s: float, clock: float) -> LiveEnvironment:
    fleet = Fleet(hosts=[Host(name="h1", cores=2, cpu_mhz=2000, memory_mib=2048)], vms=[])
    return LiveEnvironment(
        {}, FenceRunner({}), fleet, {}, timeout_s=1, heartbeat_dir=folder,
        heartbeat_max_age_s=max_age_s, clock=lambda: clock,
    )  # fmt: skip


def test_a_beat_is_fresh_for_the_manager_then_goes_stale(tmp_path: Path) -> None:
    assert _env(tmp_path, 3, time.time())._heartbeat("h1") is False  # never beaten
    HeartbeatWriter(tmp_path, "h1", 1).beat()
    beat = tmp_path / "h1"
    assert float(beat.read_text()) == pytest.approx(time.time(), abs=60)
    assert _env(tmp_path, 3, time.time())._heartbeat("h1") is True
    assert _env(tmp_path, 3, beat.stat().st_mtime + 4)._heartbeat("h1") is False
    assert [p.name for p in tmp_path.iterdir()] == ["h1"]  # no temporary file left


def test_run_beats_the_given_number_of_times(tmp_path: Path) -> None:
    t = [1000.0]
    slept: list[float] = []
    writer = HeartbeatWriter(tmp_path, "h1", 2.5, clock=lambda: t[0], sleep=slept.append)
    writer.run(3)
    assert slept == [2.5, 2.5] and (tmp_path / "h1").read_text() == "1000.000\n"


@pytest.mark.parametrize("host", ["", "..", "a/b"])
def test_a_host_name_that_is_no_file_name_is_refused(tmp_path: Path, host: str) -> None:
    with pytest.raises(ValidationError, match="heartbeat file"):
        HeartbeatWriter(tmp_path, host, 1)


def test_cli_writes_beats_and_a_missing_folder_is_one_sentence(tmp_path: Path) -> None:
    env = {**os.environ, "CORRAL_HOME": str(tmp_path / "home")}
    cmd = [sys.executable, "-m", "corral", "ha", "heartbeat", "h1", "--interval", "0.1"]
    done = subprocess.run([*cmd, "--dir", str(tmp_path), "--count", "2"], env=env, check=False)
    assert done.returncode == 0 and (tmp_path / "h1").is_file()
    missing = subprocess.run(
        [*cmd, "--dir", str(tmp_path / "nope")], env=env, capture_output=True, text=True,
        check=False,
    )  # fmt: skip
    assert missing.returncode != 0 and "does not exist" in missing.stderr
    assert "Traceback" not in missing.stderr
    none = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    assert none.returncode != 0 and "heartbeat_dir" in none.stderr
    with pytest.raises(ConfigError):
        HeartbeatWriter(tmp_path / "nope", "h1", 1)
