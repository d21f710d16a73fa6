"""Aborting a maintenance evacuation on real hosts: how long from `abort` to the guest
running on its host alone, with the migration cancelled through libvirt's abortJob.

One PRIVATE set of three realhosts (its own CORRAL_REALHOSTS_DIR; the shared hosts are never
touched), one 96 MiB guest on host 1, the migration stream capped (--bandwidth MiB/s) so it
is still in flight when the abort comes. Each trial: `enter` in a thread, wait until libvirt
reports data sent, `abort` from a second service (as another process would), then read where
the guest runs. Prints one line per trial and min/median/max. Needs root and
`bash scripts/realhosts.sh up` done once (for the artifacts).

    python benchmarks/bench_ha_abort.py [--trials 5] [--bandwidth 2]
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import libvirt
from bench_ha_drill import HOSTS, SHARED, realhosts
from cryptography.fernet import Fernet
from guest import guest_xml, make_disk, wait_for_console

from corral.config import Settings
from corral.inventory.service import Inventory
from corral.security.secrets import SecretBox
from corral.services.ha_live_policy import parse_policy
from corral.services.ha_maintenance import MaintenanceService
from corral.store.db import Database


def _in_flight(dom: Any) -> bool:
    try:
        info = dom.jobInfo()
    except libvirt.libvirtError:
        return False
    return bool(info[0] != libvirt.VIR_DOMAIN_JOB_NONE and info[7] > 0)


def _running_on(uris: list[str], uuid_: str) -> list[str]:
    found = []
    for name, uri in zip(HOSTS, uris, strict=True):
        conn = libvirt.open(uri)
        try:
            found += [
                name for d in conn.listAllDomains() if d.UUIDString() == uuid_ and d.isActive()
            ]
        finally:
            conn.close()
    return found


def trials(state: Path, work: Path, n: int, bandwidth: int) -> list[dict[str, float]]:
    uris = [
        f"qemu+unix:///system?socket={state}/host{i}/run/libvirt/libvirt-sock" for i in (1, 2, 3)
    ]
    db = Database(f"sqlite:///{work / 'abort.db'}")
    db.migrate()
    inventory = Inventory(db, SecretBox(Fernet.generate_key()))
    for name, uri in zip(HOSTS, uris, strict=True):
        inventory.add_host(name, uri)
    name = f"corral-abort-{uuid.uuid4().hex[:6]}"
    console = work / f"{name}.log"
    xml = guest_xml(name, kernel=state / "guest/vmlinuz", initrd=state / "guest/initrd.img",
                    disk_path=make_disk(work / f"{name}.qcow2", 16), console_log=console,
                    disk_cache="none")  # fmt: skip
    dom = libvirt.open(uris[0]).defineXML(xml)
    dom.create()
    wait_for_console(console, timeout_s=120)
    settings = Settings(home=work / "home")
    slow = {"uri": "tcp://127.0.0.1", "unsafe": True, "bandwidth_mib_s": bandwidth}
    policy = parse_policy({"migration": slow}, settings)
    rows = []
    for i in range(n):
        began = time.monotonic()
        run = threading.Thread(
            target=MaintenanceService(inventory, settings, policy=policy).enter, args=("ha1",)
        )
        run.start()
        while not _in_flight(dom):
            time.sleep(0.05)
        flying = time.monotonic() - began
        asked = time.monotonic()
        report = MaintenanceService(inventory, settings, policy=policy).abort("ha1")
        back = time.monotonic() - asked
        run.join()
        where = _running_on(uris, dom.UUIDString())
        rows.append({"in_flight": flying, "abort": back, "ok": float(where == ["ha1"])})
        print(f"trial {i + 1}: migration in flight after {flying:.2f} s, abort returned "
              f"{report.state} in {back:.2f} s, guest on {','.join(where) or 'none'}")  # fmt: skip
    dom.destroy()
    dom.undefine()
    return rows


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--bandwidth", type=int, default=2, help="MiB/s per migration stream")
    args = parser.parse_args()
    state = Path(f"/tmp/crl-ab-{uuid.uuid4().hex[:6]}")
    state.mkdir()
    import shutil

    shutil.copytree(SHARED / "guest", state / "guest")
    shutil.copytree(SHARED / "qemu-capabilities", state / "qemu-capabilities")
    try:
        realhosts(state, "up", "--hosts", "3")
        with tempfile.TemporaryDirectory() as tmp:
            rows = trials(state, Path(tmp), args.trials, args.bandwidth)
    finally:
        realhosts(state, "down")
        shutil.rmtree(state, ignore_errors=True)
    print(f"\n{'seconds':<34}{'min':>8}{'median':>8}{'max':>8}")
    for key, label in (("abort", "abort asked -> guest home alone"),):
        values = [r[key] for r in rows]
        print(f"{label:<34}{min(values):>8.2f}{statistics.median(values):>8.2f}{max(values):>8.2f}")
    print(f"guest on its host alone after the abort: {int(sum(r['ok'] for r in rows))}/{len(rows)}")


if __name__ == "__main__":
    main()
