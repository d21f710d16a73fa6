"""The fence-agent plugin against a real agent process of the same protocol (agents/)."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from corral.engines.ha_manager import FenceStatus
from corral.errors import ConfigError
from corral.hypervisor.fence import FenceAgent, FenceResult, make_fence_method
from corral.services.ha_fencing import FenceRunner

AGENT = Path(__file__).resolve().parent / "agents" / "power_agent.py"


def _host(tmp_path: Path, power: str, mode: str = "normal") -> Path:
    tmp_path.mkdir(exist_ok=True)
    (tmp_path / "power").write_text(power)
    (tmp_path / "mode").write_text(mode)
    return tmp_path


def _agent(home: Path, password: str = "s3cret", timeout_s: float = 20.0) -> FenceAgent:
    options = {"ip": str(home), "username": "admin", "password": password}
    return FenceAgent([sys.executable, str(AGENT)], options, timeout_s)


def _calls(home: Path) -> list[str]:
    return (home / "calls").read_text().splitlines()


def test_powers_off_and_proves_it(tmp_path: Path) -> None:
    home = _host(tmp_path, "on")
    outcome = _agent(home).fence()
    assert outcome.result is FenceResult.fenced
    assert (home / "power").read_text() == "off"
    assert [c.split()[0] for c in _calls(home)] == ["status", "off", "status"]


def test_already_off_counts_as_fenced(tmp_path: Path) -> None:
    home = _host(tmp_path, "off")
    outcome = _agent(home).fence()
    assert outcome.result is FenceResult.already_off and outcome.result.proven_off
    assert [c.split()[0] for c in _calls(home)] == ["status"]


def test_refused_off_is_a_failure(tmp_path: Path) -> None:
    outcome = _agent(_host(tmp_path, "on", "off_fails")).fence()
    assert outcome.result is FenceResult.failed
    assert "power off refused" in outcome.detail


def test_off_that_leaves_power_on_is_a_failure(tmp_path: Path) -> None:
    outcome = _agent(_host(tmp_path, "on", "liar")).fence()
    assert outcome.result is FenceResult.failed and not outcome.result.proven_off


def test_hanging_agent_times_out_and_its_group_is_killed(tmp_path: Path) -> None:
    home = _host(tmp_path, "on", "hang")
    outcome = _agent(home, timeout_s=3.0).fence()
    assert outcome.result is FenceResult.timeout
    child = int((home / "pids").read_text())
    assert _dies(child)


def test_password_only_on_stdin_and_never_in_the_detail(tmp_path: Path) -> None:
    home = _host(tmp_path, "on")
    outcome = _agent(home, password="wrong-pw").fence()
    assert outcome.result is FenceResult.failed
    assert "wrong-pw" not in outcome.detail and "***" in outcome.detail
    assert all("pw" not in c and "s3cret" not in c for c in _calls(home))


@pytest.mark.parametrize(
    "options",
    [{"action": "on"}, {"plug": "1\naction=on"}, {"Bad-Key": "x"}],
)
def test_options_cannot_smuggle_lines(options: dict[str, str]) -> None:
    with pytest.raises(ConfigError):
        FenceAgent([sys.executable, str(AGENT)], options)


def test_registry_makes_the_agent_and_refuses_unknown(tmp_path: Path) -> None:
    home = _host(tmp_path, "off")
    method = make_fence_method(
        "agent",
        command=[sys.executable, str(AGENT)],
        options={"ip": str(home), "password": "s3cret"},
    )
    assert method.fence().result is FenceResult.already_off
    with pytest.raises(ConfigError):
        make_fence_method("carrier-pigeon")


def _dies(pid: int) -> bool:
    """SIGKILL is delivered asynchronously: give the grandchild a moment to go."""
    for _ in range(100):
        if _gone(pid):
            return True
        time.sleep(0.05)
    return False


def _gone(pid: int) -> bool:
    """Dead or a zombie (an orphan waits for init to reap it)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


def _settle(runner: FenceRunner, host: str) -> FenceStatus:
    """Poll as the manager does, each round, until the fence is no longer pending."""
    for _ in range(400):
        status = runner.poll(host)
        if status is not FenceStatus.pending:
            return status
        time.sleep(0.05)
    raise AssertionError("the fence never finished")


def test_runner_gives_the_manager_begin_and_poll(tmp_path: Path) -> None:
    on, off = _host(tmp_path / "a", "on"), _host(tmp_path / "b", "off")
    hang = _host(tmp_path / "c", "on", "hang")
    runner = FenceRunner(
        {
            "H1": {"power": _agent(on)},
            "H2": {"power": _agent(off)},
            "H3": {"power": _agent(hang, timeout_s=2.0)},
        }
    )
    try:
        for host in ("H1", "H2", "H3"):
            runner.begin(host, "power")
        runner.begin("H4", "power")
        assert _settle(runner, "H1") is FenceStatus.fenced
        assert _settle(runner, "H2") is FenceStatus.already_off
        assert _settle(runner, "H3") is FenceStatus.failed
        assert _settle(runner, "H4") is FenceStatus.failed
        assert (on / "power").read_text() == "off"
    finally:
        runner.close()
