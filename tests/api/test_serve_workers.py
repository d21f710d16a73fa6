"""``corral serve`` runs ``Settings.api_workers`` processes (default: one per CPU) on one port.

Issue 16: one process served every request, so list pages at 50 clients queued behind one
core. The workers share the listening socket; each builds its own services; a SIGKILL of the
main process takes them down with it (none keeps the port); jobs a stopped server left running
are failed once, by the main process, never by a worker starting late.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import psutil
import pytest

from corral.cli.serve import worker_count
from corral.config import Settings
from corral.services.jobs import JobService
from corral.store import models as m
from corral.store.db import Database
from tests.reclaim.conftest import _free_port


def _wait_ready(url: str, proc: subprocess.Popen[bytes]) -> None:
    for _ in range(1200):
        assert proc.poll() is None, f"corral serve exited with {proc.returncode}"
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError("corral serve did not answer /healthz")


def test_workers_default_to_one_per_cpu_now_that_sessions_live_in_the_database(
    tmp_path: Path,
) -> None:
    assert worker_count(Settings(home=tmp_path)) == (os.cpu_count() or 1)
    assert worker_count(Settings(home=tmp_path, api_workers=3)) == 3


def test_three_workers_serve_one_port_and_die_with_the_server(db: Database, tmp_path: Path) -> None:
    db.dispose()
    env = {
        **os.environ,
        "CORRAL_HOME": str(tmp_path / "home"),
        "CORRAL_DATABASE_URL": db.url.render_as_string(hide_password=False),
        "CORRAL_API_WORKERS": "3",
    }
    token = subprocess.run(
        [sys.executable, "-m", "corral", "token", "create", "workers"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout.strip()
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen([sys.executable, "-m", "corral", "serve", "--port", str(port)], env=env)
    try:
        _wait_ready(url, proc)
        workers = [  # beside multiprocessing's resource tracker
            c
            for c in psutil.Process(proc.pid).children()
            if "resource_tracker" not in " ".join(c.cmdline())
        ]
        assert len(workers) == 3
        # Each worker listens on a socket of its own (SO_REUSEPORT): with one shared socket,
        # the worker that woke first took nearly every connection of a burst of clients.
        assert len({_listening_socket(w, port) for w in workers}) == 3
        auth = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=url, headers=auth, timeout=60) as client:
            for _ in range(30):  # new connections, spread by the kernel over the workers
                client.headers["Connection"] = "close"
                r = client.get("/api/v1/vms", params={"limit": 5})
                assert r.status_code == 200 and r.json()["items"] == []
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    gone, alive = psutil.wait_procs(workers, timeout=30)
    assert alive == [] and len(gone) == 3
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{url}/healthz", timeout=2)


def _listening_socket(proc: psutil.Process, port: int) -> str:
    """The one socket (its kernel name, socket:[inode]) on which ``proc`` listens on ``port``,
    once it does (a worker listens when its app is built; the first to answer /healthz may be
    another)."""
    fds: list[int] = []
    for _ in range(1200):
        fds = [
            c.fd
            for c in proc.net_connections(kind="tcp")
            if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port
        ]
        if fds:
            break
        time.sleep(0.1)
    assert len(fds) == 1, fds
    return os.readlink(f"/proc/{proc.pid}/fd/{fds[0]}")


def _job(db: Database, job_id: str, state: str) -> None:
    with db.session() as s:
        s.add(
            m.Job(
                id=job_id,
                kind="nothing",
                state=state,
                params={},
                created_at=datetime.now(UTC),
            )
        )


def _state(db: Database, job_id: str) -> str:
    with db.session() as s:
        row = s.get(m.Job, job_id)
        assert row is not None
        return row.state


def test_a_worker_leaves_running_jobs_alone_the_main_process_fails_them(db: Database) -> None:
    _job(db, "running-1", "running")
    jobs = JobService(db)
    assert jobs.recover(interrupted=False) == (0, 0)
    assert _state(db, "running-1") == "running"
    assert jobs.fail_interrupted() == 1
    assert _state(db, "running-1") == "failed"
