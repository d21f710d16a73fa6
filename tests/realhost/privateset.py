"""A private set of real libvirtd hosts for one test: scripts/realhosts.sh with a state folder
of its own, so a test may kill or freeze its daemons without touching the shared hosts."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from fence_realhost import power_off
from guest import RealhostEnv

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "realhosts.sh"
#: Migration ports of private hosts start here, after the shared set's (64 a host from 49152):
#: the private-set tests run beside the shared-set ones (scripts/test.sh).
PORT_BASE = 49664


def realhosts(state_dir: Path, *args: str) -> None:
    """``realhosts.sh ARGS`` on the set kept in ``state_dir``."""
    env = {
        **os.environ,
        "CORRAL_REALHOSTS_DIR": str(state_dir),
        "CORRAL_REALHOST_PORT_BASE": str(PORT_BASE),
    }
    done = subprocess.run(
        ["bash", str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, f"realhosts.sh {' '.join(args)} failed:\n{done.stderr[-3000:]}"


@contextmanager
def private_set(env: RealhostEnv, prefix: str, hosts: int) -> Iterator[tuple[Path, list[str]]]:
    """(state folder, URIs) of ``hosts`` new hosts, stopped and removed afterwards. The guest
    files and QEMU's probed capabilities are copied from the shared set (built once already)."""
    state_dir = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))  # socket paths must stay short
    shared = env.kernel.parent.parent
    shutil.copytree(env.kernel.parent, state_dir / "guest")
    if (shared / "qemu-capabilities").is_dir():
        shutil.copytree(shared / "qemu-capabilities", state_dir / "qemu-capabilities")
    try:
        realhosts(state_dir, "up", "--hosts", str(hosts))
        lines = (state_dir / "env").read_text().splitlines()
        uris = next(ln for ln in lines if ln.startswith("CORRAL_REALHOST_URIS=")).split("=", 1)[1]
        yield state_dir, uris.split(",")
    finally:
        # The set is thrown away: its cables are pulled all at once (seconds saved per guest
        # and per daemon that down would stop in turn), then down removes what is left.
        power_off(sorted(state_dir.glob("host[0-9]*")))
        realhosts(state_dir, "down")  # this private set only, never the shared one
        shutil.rmtree(state_dir, ignore_errors=True)
