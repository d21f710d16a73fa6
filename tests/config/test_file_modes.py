"""Files at rest: Corral's home is 0700 and every file the real CLI, demo and server write is 0600.

The commands run as real processes started with the usual umask (022), so only Corral itself
can make the files private.
"""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

CORRAL = [sys.executable, "-m", "corral"]


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CORRAL_")}
    shared = os.environ.get("CORRAL_SHARED_DATA")
    return {**env, "CORRAL_HOME": str(home), **({"CORRAL_SHARED_DATA": shared} if shared else {})}


def _corral(home: Path, *args: str) -> None:
    proc = subprocess.run(
        [*CORRAL, *args], env=_env(home), capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, (args, proc.stderr)


def _modes(root: Path) -> dict[str, int]:
    found = {str(p.relative_to(root)): stat.S_IMODE(p.stat().st_mode) for p in root.rglob("*")}
    return {".": stat.S_IMODE(root.stat().st_mode), **found}


def _not_private(modes: dict[str, int], root: Path) -> list[str]:
    return [
        f"{name} {mode:o}"
        for name, mode in modes.items()
        if mode & 0o077 or ((root / name).is_dir() and mode != 0o700)
    ]


@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve_and_stat(home: Path) -> dict[str, int]:
    """Start the real API server, use it, and stat the home while it holds its files open."""
    port = _free_port()
    made = subprocess.run(
        [*CORRAL, "token", "create", "file-modes"],
        env=_env(home),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    auth = {"Authorization": f"Bearer {made.stdout.strip().splitlines()[-1]}"}  # reads need one
    proc = subprocess.Popen(
        [*CORRAL, "serve", "--port", str(port)],
        env=_env(home),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(600):
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        assert httpx.get(f"{url}/api/v1/hosts", headers=auth, timeout=30).status_code == 200
        top = {"metric": "cpu_pct"}
        httpx.get(f"{url}/api/v1/metrics/top", params=top, headers=auth, timeout=30)
        return _modes(home)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_every_file_under_the_home_is_private(tmp_path: Path, umask_022: None) -> None:
    home = tmp_path / "home"
    _corral(home, "demo", "--no-serve", "--vms", "12", "--hosts", "2", "--history-days", "1")
    _corral(home, "sync")
    _corral(home, "sprawl", "report", "--html", str(home / "report.html"))
    _corral(home, "export", str(home / "export"), "--format", "csv")
    _corral(home, "export", str(tmp_path / "elsewhere"), "--format", "json")
    modes = _modes(home)
    expected = {"corral.db", "metrics.duckdb", "secret.key", "sprawl-report.html", "report.html"}
    assert expected <= set(modes)
    assert any(name.startswith("outbox/") and name.endswith(".eml") for name in modes)
    assert any(name.startswith("demo/") and name.endswith(".xml") for name in modes)
    assert "export/vms.csv" in modes
    assert _not_private(modes, home) == []
    assert _not_private(_modes(tmp_path / "elsewhere"), tmp_path / "elsewhere") == []

    running = _serve_and_stat(home)
    assert "corral.db-wal" in running and "corral.db-shm" in running  # open while serving
    assert _not_private(running, home) == []
