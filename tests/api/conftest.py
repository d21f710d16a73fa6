"""A real Corral API server (``corral serve`` in its own process) on a throw-away fleet.

The fleet: a copy of the test-driver node files for host-a and host-b in a fresh
``CORRAL_HOME`` (SQLite), synced, one write token, and one reclamation case whose notice a
real SMTP server (aiosmtpd) received, so that reads of people's data have an e-mail to show.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.inventory.conftest import nodes  # noqa: F401  (fixture)
from tests.reclaim.conftest import _free_port, smtp_server

NODES = Path(__file__).resolve().parents[1] / "fixtures" / "nodes"
CORRAL = (sys.executable, "-m", "corral")


@dataclass
class Server:
    url: str
    token: str
    pid: int
    env: dict[str, str]
    home: Path
    owner_mail: str = "alice@example.test"
    auth: dict[str, str] = field(init=False)

    def __post_init__(self) -> None:
        self.auth = {"Authorization": f"Bearer {self.token}"}

    def rss_kib(self) -> int:
        """The server process's resident memory, from the kernel."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError(f"no VmRSS for process {self.pid}")

    def hwm_kib(self) -> int:
        """The server process's peak resident memory so far."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
        raise AssertionError(f"no VmHWM for process {self.pid}")


def cli(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [*CORRAL, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, (args, done.stdout, done.stderr)
    return done.stdout


def _wait_ready(url: str, proc: subprocess.Popen[bytes]) -> None:
    for _ in range(300):
        if proc.poll() is not None:
            raise AssertionError(f"corral serve exited with {proc.returncode}")
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError("corral serve did not answer /healthz")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("served")
    node_dir = root / "node_dir"
    node_dir.mkdir()
    for name in ("host-a.xml", "host-b.xml"):
        shutil.copy(NODES / name, node_dir / name)
    with smtp_server() as (_inbox, smtp):
        env = {
            **os.environ,
            "CORRAL_HOME": str(root / "home"),
            "CORRAL_NODE_DIR": str(node_dir),
            "CORRAL_SMTP_URL": f"smtp://{smtp.host}:{smtp.port}",
            "CORRAL_MAIL_DOMAIN": "example.test",
            "CORRAL_API_MAX_BODY": str(1024 * 1024),
            "CORRAL_API_WORKERS": "1",  # one process, whose memory the guard tests watch
        }
        env.pop("CORRAL_DATABASE_URL", None)
        for host in ("host-a", "host-b"):
            cli(env, "hosts", "add", host, f"test://{node_dir / (host + '.xml')}")
        cli(env, "sync")
        token = cli(env, "token", "create", "api-tests").strip().splitlines()[-1]
        cli(env, "reclaim", "flag", "web-01", "--category", "idle", "--reason", "idle for long")
        cli(env, "reclaim", "run")
        port = _free_port()
        proc = subprocess.Popen([*CORRAL, "serve", "--port", str(port)], env=env)
        url = f"http://127.0.0.1:{port}"
        try:
            _wait_ready(url, proc)
            yield Server(url, token, proc.pid, env, root / "home")
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
