"""Jobs outlive the server: a real ``corral serve`` killed with SIGKILL mid-job, then restarted.

The jobs that were running come back failed (``job-interrupted``); the one still
queued behind them is run by the new process; ``corral jobs`` shows the same.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from corral.store.db import Database
from tests.api.support import fleet_doc


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Server:
    """``python -m corral serve`` on a free port, with the test's environment."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env = env
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "corral", "serve", "--port", str(self.port)],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        for _ in range(600):
            assert self.proc.poll() is None, self.log.read_text()
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise AssertionError("the server did not come up: " + self.log.read_text())

    def kill(self, sig: int = signal.SIGKILL) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)
        self.proc.wait(timeout=60)


@pytest.fixture
def env(db: Database, tmp_path: Path, shared_data: Path) -> dict[str, str]:
    return {
        **os.environ,
        "CORRAL_HOME": str(tmp_path / "home"),
        "CORRAL_DATABASE_URL": db.url.render_as_string(hide_password=False),
        "CORRAL_SHARED_DATA": str(shared_data),
        "CORRAL_API_WORKERS": "1",  # one process's two job threads: the third job queues
    }


def _corral(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "corral", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture
def corral_server(env: dict[str, str], tmp_path: Path) -> Iterator[Server]:
    srv = Server(env, tmp_path / "server.log")
    yield srv
    if srv.proc is not None and srv.proc.poll() is None:
        srv.kill(signal.SIGKILL)


def test_jobs_survive_a_sigkill_of_the_server(env: dict[str, str], corral_server: Server) -> None:
    server = corral_server
    token = _corral(env, "token", "create", "restart-test").strip()
    auth = {"Authorization": f"Bearer {token}"}
    server.start()
    client = httpx.Client(base_url=server.url, headers=auth, timeout=30)

    def job(job_id: str) -> dict[str, Any]:
        r = client.get(f"/api/v1/jobs/{job_id}")
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body

    def wait(job_id: str, states: tuple[str, ...]) -> dict[str, Any]:
        for _ in range(1200):
            found = job(job_id)
            if found["state"] in states:
                return found
            time.sleep(0.1)
        raise AssertionError(f"{job_id} never reached {states}: {found}")

    # Two simulation days fill the two workers; a consolidation waits behind them.
    sims = [
        client.post("/api/v1/sim/runs", json={"policy": "thr-mmt-0.8", "day": day}).json()["id"]
        for day in ("20110303", "20110306")
    ]
    body = {"fleet": fleet_doc("small_cluster.yaml"), "mode": "heuristic"}
    queued = client.post("/api/v1/plan/consolidate", json=body).json()["id"]
    for sim in sims:
        assert wait(sim, ("running", "succeeded", "failed"))["state"] == "running"
    assert job(queued)["state"] == "queued"

    server.kill(signal.SIGKILL)
    listed = json.loads(_corral(env, "jobs", "list", "-o", "json"))
    assert {j["id"]: j["state"] for j in listed} == {
        sims[0]: "running",
        sims[1]: "running",
        queued: "queued",
    }  # what the killed process left in the database

    server.start()
    for sim in sims:
        failed = job(sim)
        assert failed["state"] == "failed" and failed["result"] is None
        assert failed["error"]["code"] == "job-interrupted"
        assert failed["error"]["status"] == 500 and failed["finished_at"] is not None
    rerun = wait(queued, ("succeeded", "failed"))
    assert rerun["state"] == "succeeded", rerun
    assert rerun["result"]["active_hosts_after"] == 4

    shown = json.loads(_corral(env, "jobs", "show", sims[0], "-o", "json"))
    assert shown["state"] == "failed" and shown["error"]["code"] == "job-interrupted"
    client.close()
