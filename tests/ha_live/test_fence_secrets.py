"""Fence-agent secrets in the HA policy are references, never clear text: the agent (a
real process) gets the password on its stdin, while the policy file, every table of the
database after manager rounds, the logs and `corral ha status` never hold it."""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import yaml
from sqlalchemy import select

from corral.config import Settings
from corral.errors import ConfigError
from corral.inventory.service import Inventory
from corral.services.ha_fencing import FenceRunner
from corral.services.ha_live import HALiveService
from corral.services.ha_live_policy import load_policy, parse_policy
from corral.store.models import Base

NODES = Path(__file__).resolve().parents[1] / "fixtures" / "nodes"
#: A fence agent that checks the password against the SHA-256 in its argument list, and on
#: a wrong one prints it in its error line (as a careless agent might).
AGENT = """
import hashlib, sys
opts = dict(ln.split("=", 1) for ln in sys.stdin.read().splitlines() if "=" in ln)
pw = opts.get("password", "")
if hashlib.sha256(pw.encode()).hexdigest() != sys.argv[1]:
    print(f"login refused for password {pw}", file=sys.stderr)
    sys.exit(1)
sys.exit(2 if opts["action"] == "status" else 0)
"""


@pytest.fixture
def hosts(inventory: Inventory, tmp_path: Path) -> Inventory:
    nodes = tmp_path / "nodes"
    shutil.copytree(NODES, nodes)
    for host in ("host-a", "host-b"):
        inventory.add_host(host, f"test://{nodes / f'{host}.xml'}")
    return inventory


def _env(tmp_path: Path, hosts: Inventory, policy: Path | None = None) -> dict[str, str]:
    env = {
        **os.environ,
        "CORRAL_HOME": str(tmp_path / "home"),
        "CORRAL_DATABASE_URL": hosts.db.url.render_as_string(hide_password=False),
    }
    if policy is not None:
        env["CORRAL_HA_POLICY"] = str(policy)
    return env


def _corral(env: dict[str, str], *args: str, stdin: str = "") -> str:
    done = subprocess.run(
        [sys.executable, "-m", "corral", *args], env=env, input=stdin, capture_output=True,
        text=True, check=True,
    )  # fmt: skip
    return done.stdout + done.stderr


def _database_text(hosts: Inventory) -> str:
    with hosts.db.session() as s:
        return "\n".join(
            repr(tuple(row))
            for table in Base.metadata.sorted_tables
            for row in s.execute(select(table))
        )


def _fence(runner: FenceRunner, host: str) -> str:
    runner.begin(host, "power")
    deadline = time.monotonic() + 30
    while (status := runner.poll(host)).value == "pending":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    return status.value


def test_secrets_reach_the_agent_but_no_store_log_or_status(
    hosts: Inventory, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    secret = f"pw-{uuid.uuid4().hex}"
    env = _env(tmp_path, hosts)
    sealed = yaml.safe_load(_corral(env, "ha", "encrypt-secret", stdin=secret + "\n"))
    assert set(sealed) == {"encrypted"} and secret not in str(sealed)
    pw_file = tmp_path / "host-b.pass"
    pw_file.write_text(secret + "\n")
    pw_file.chmod(0o600)
    agent = tmp_path / "agent.py"
    agent.write_text(AGENT)
    digest = hashlib.sha256(secret.encode()).hexdigest()

    def method(password: object) -> list[dict[str, object]]:
        command = [sys.executable, str(agent), digest]
        opts = {"ip": "10.0.0.9", "password": password}
        return [{"name": "power", "method": "agent", "command": command, "options": opts}]

    policy_path = tmp_path / "ha.yaml"
    spec = {"fence": {"host-a": method(sealed), "host-b": method({"file": str(pw_file)})}}
    policy_path.write_text(yaml.safe_dump(spec))
    settings = Settings(home=tmp_path / "home", ha_policy=policy_path)
    caplog.set_level(logging.DEBUG)

    policy = load_policy(settings)
    service = HALiveService(hosts, settings, policy=policy, instance="t:1")
    for _ in range(2):
        service.round()
    service.close()
    runner = FenceRunner(policy.fences)
    assert _fence(runner, "host-a") == "already_off"  # the agent got the right password
    assert _fence(runner, "host-b") == "already_off"
    status_text = _corral(_env(tmp_path, hosts, policy_path), "ha", "status")
    status_json = _corral(_env(tmp_path, hosts, policy_path), "ha", "status", "-o", "json")

    assert secret not in policy_path.read_text()
    assert secret not in _database_text(hosts)
    assert secret not in caplog.text
    assert secret not in status_text + status_json
    assert "host-a" in status_json  # the status did show the hosts


def test_a_wrong_secret_fails_the_fence_and_its_echo_is_blanked(
    hosts: Inventory, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings(home=tmp_path / "home")
    agent = tmp_path / "agent.py"
    agent.write_text(AGENT)
    wrong = f"wrong-{uuid.uuid4().hex}"
    pw_file = tmp_path / "pass"
    pw_file.write_text(wrong)
    pw_file.chmod(0o600)
    command = [sys.executable, str(agent), hashlib.sha256(b"right").hexdigest()]
    opts = {"password": {"file": str(pw_file)}}
    spec = {"host-a": [{"name": "power", "method": "agent", "command": command, "options": opts}]}
    caplog.set_level(logging.DEBUG)
    runner = FenceRunner(parse_policy({"fence": spec}, settings).fences)
    assert _fence(runner, "host-a") == "failed"
    assert "login refused" in runner.details["host-a"] and wrong not in runner.details["host-a"]
    assert wrong not in caplog.text


def test_a_secret_in_clear_or_in_an_open_file_is_refused(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")

    def policy(password: object) -> None:
        opts = {"ip": "10.0.0.9", "password": password}
        spec = {"h": [{"name": "power", "method": "agent", "command": ["x"], "options": opts}]}
        parse_policy({"fence": spec}, settings)

    with pytest.raises(ConfigError, match="in clear"):
        policy("hunter2")
    open_file = tmp_path / "pw"
    open_file.write_text("hunter2")
    open_file.chmod(0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        policy({"file": str(open_file)})
    with pytest.raises(ConfigError, match="cannot be read"):
        policy({"file": str(tmp_path / "missing")})
