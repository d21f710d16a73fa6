#!/usr/bin/env python3
"""A fence agent (standard fence-agent protocol) for a host of scripts/realhosts.sh.

Reads ``key=value`` lines on stdin: ``action`` (status, off, on, monitor) and
``host_dir`` (the host's folder, var/realhosts/hostK). "Power" is the host's libvirtd
and every QEMU it started: status exits 0 while any of them lives, 2 when none does;
off kills them all with SIGKILL (the "cable pulled"), so it is also how a test fails a
host. Exit 1 on an error. Used by tests/ha_live and benchmarks/bench_ha_drill.py.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from pathlib import Path


def options() -> dict[str, str]:
    opts = {}
    for line in sys.stdin.read().splitlines():
        if "=" in line:
            key, value = line.split("=", 1)
            opts[key.strip()] = value.strip()
    return opts


def _alive(pid: int) -> bool:
    try:
        return "zombie" not in Path(f"/proc/{pid}/status").read_text().lower()
    except OSError:
        return False


def host_pids(host_dir: Path) -> list[int]:
    """libvirtd (its pid file), every process in its mount namespace, QEMU by pid files."""
    pids: set[int] = set()
    pid_files = [host_dir / "run/libvirt/libvirtd.pid", *host_dir.glob("run/libvirt/qemu/*.pid")]
    for pid_file in pid_files:
        with contextlib.suppress(OSError, ValueError):
            pids.add(int(pid_file.read_text().strip()))
    ns_file = host_dir / "mntns"
    ns = ns_file.read_text().strip() if ns_file.exists() else ""
    if ns and ns != os.readlink("/proc/self/ns/mnt"):  # never the namespace of this machine
        for proc in Path("/proc").iterdir():
            if proc.name.isdigit():
                try:
                    if os.readlink(proc / "ns/mnt") == ns:
                        pids.add(int(proc.name))
                except OSError:
                    pass
    return sorted(p for p in pids if _alive(p))


def power_off(host_dirs: list[Path], timeout_s: float = 10.0) -> bool:
    """SIGKILL every process of these hosts at once, until none is left; False if one is."""
    deadline = time.monotonic() + timeout_s
    while (pids := [p for d in host_dirs for p in host_pids(d)]) and time.monotonic() < deadline:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.1)
    return not any(host_pids(d) for d in host_dirs)


def main() -> int:
    opts = options()
    action = opts.get("action", "")
    if "host_dir" not in opts:
        print("host_dir is required", file=sys.stderr)
        return 1
    host_dir = Path(opts["host_dir"])
    if action in ("status", "monitor"):
        return 0 if host_pids(host_dir) else 2
    if action == "off":
        return 0 if power_off([host_dir]) else 1
    print(f"action {action!r} is not supported", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
