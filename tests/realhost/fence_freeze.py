#!/usr/bin/env python3
"""A fence agent (standard protocol) that powers a realhosts.sh host off *and on again*.

``off`` SIGKILLs every QEMU of the host (its guests die as in a power cut) and SIGSTOPs its
libvirtd, so the host answers nobody; ``on`` SIGCONTs the daemon: the host "boots" with its
persistent definitions still on disk and its guests shut off, as a real host comes back.
``status`` exits 2 (off) while no QEMU of it lives and its daemon is stopped, else 0.
Options on stdin: ``action`` and ``host_dir``. Used by tests/realhost/test_ha_stale.py.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from pathlib import Path


def _pid(path: Path) -> int | None:
    with contextlib.suppress(OSError, ValueError):
        pid = int(path.read_text().strip())
        if Path(f"/proc/{pid}").exists():
            return pid
    return None


def _state(pid: int) -> str:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("State:"):
            return line.split()[1]
    return "?"


def main() -> int:
    pairs = (ln.split("=", 1) for ln in sys.stdin.read().splitlines() if "=" in ln)
    opts = {k.strip(): v.strip() for k, v in pairs}
    host_dir = Path(opts.get("host_dir", ""))
    daemon = _pid(host_dir / "run/libvirt/libvirtd.pid")
    qemus = [p for f in host_dir.glob("run/libvirt/qemu/*.pid") if (p := _pid(f)) is not None]
    qemus = [p for p in qemus if p != daemon and _state(p) != "Z"]  # driver.pid is libvirtd
    action = opts.get("action", "")
    if daemon is None:
        print("no libvirtd for this host", file=sys.stderr)
        return 1
    if action in ("status", "monitor"):
        return 2 if not qemus and _state(daemon) == "T" else 0
    if action == "off":
        os.kill(daemon, signal.SIGSTOP)
        for pid in qemus:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while any(Path(f"/proc/{p}").exists() and _state(p) != "Z" for p in qemus):
            if time.monotonic() > deadline:
                return 1
            time.sleep(0.1)
        return 0
    if action == "on":
        os.kill(daemon, signal.SIGCONT)
        return 0
    print(f"action {action!r} is not supported", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
