"""Measure the real-host test guests: boot time, host memory per guest, live migration.

    .venv/bin/python scripts/realhosts/measure.py [--guests N]

Needs hosts from `bash scripts/realhosts.sh up` (reads var/realhosts/env). Boots N idle guests
one after another on host 1, then N at once, then migrates one to host 2, and prints a table.
The load average is printed too: these are CPU-bound TCG guests, and on a shared machine the
figures move with the load.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT / "tests" / "realhost"))

import libvirt  # noqa: E402
from guest import Guest, GuestFactory, RealhostEnv, migrate_live  # noqa: E402


def load_env() -> RealhostEnv:
    state = Path(os.environ.get("CORRAL_REALHOSTS_DIR", REPO_ROOT / "var" / "realhosts"))
    values = dict(
        line.split("=", 1) for line in (state / "env").read_text().splitlines() if "=" in line
    )
    return RealhostEnv(
        uris=tuple(values["CORRAL_REALHOST_URIS"].split(",")),
        kernel=Path(values["CORRAL_GUEST_KERNEL"]),
        initrd=Path(values["CORRAL_GUEST_INITRD"]),
    )


def qemu_rss_mib(uri: str, name: str) -> float:
    """Resident memory of the guest's QEMU process, from libvirt's pid file of that host."""
    socket = Path(uri.split("socket=", 1)[1])
    pid = (socket.parent / "qemu" / f"{name}.pid").read_text().strip()
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for QEMU pid {pid}")


def summary(values: Sequence[float]) -> str:
    return f"{min(values):6.1f} {statistics.median(values):6.1f} {max(values):6.1f}"


def boot_one_by_one(factory: GuestFactory, count: int) -> list[float]:
    times = []
    for _ in range(count):
        guest = factory(0)
        times.append(guest.wait_ready())
        factory.cleanup()
    return times


def boot_together(factory: GuestFactory, count: int) -> tuple[list[Guest], list[float]]:
    guests = [factory(0) for _ in range(count)]
    return guests, [guest.wait_ready(timeout_s=300) for guest in guests]


def migration_seconds(guest: Guest, dest_uri: str) -> float:
    start = time.monotonic()
    migrate_live(guest.dom, dest_uri)
    return time.monotonic() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--guests", type=int, default=3)
    args = parser.parse_args()
    env = load_env()
    conns = [libvirt.open(uri) for uri in env.uris]
    workdir = Path(tempfile.mkdtemp(prefix="corral-measure-"))
    factory = GuestFactory(env, conns, workdir)
    rows: list[tuple[str, str]] = [("load average at start", f"{os.getloadavg()[0]:.1f}")]
    try:
        sequential = boot_one_by_one(factory, args.guests)
        rows.append((f"boot to /init ready, {args.guests} one by one (s)", summary(sequential)))
        guests, together = boot_together(factory, args.guests)
        rows.append((f"boot to /init ready, {args.guests} at once (s)", summary(together)))
        time.sleep(3)
        rss = [qemu_rss_mib(env.uris[0], guest.name) for guest in guests]
        rows.append(("QEMU RSS per idle 96 MiB guest (MiB)", summary(rss)))
        if len(env.uris) > 1:
            seconds = migration_seconds(guests[0], env.uris[1])
            rows.append(("live migration host1 -> host2 (s)", f"{seconds:6.1f}"))
        rows.append(("load average at end", f"{os.getloadavg()[0]:.1f}"))
    finally:
        factory.cleanup()
        for conn in conns:
            conn.close()
        shutil.rmtree(workdir, ignore_errors=True)
    sys.stdout.write(f"{'measure':50} {'min':>6} {'median':>6} {'max':>6}\n")
    for label, value in rows:
        sys.stdout.write(f"{label:50} {value}\n")


if __name__ == "__main__":
    main()
