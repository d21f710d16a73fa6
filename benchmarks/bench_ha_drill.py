"""HA drill on real hosts: pull a host's cable, time detection, fencing and the restart.

Each drill starts a PRIVATE set of three realhosts (scripts/realhosts.sh with its own
CORRAL_REALHOSTS_DIR; the shared hosts are never touched), boots one guest on host 1,
runs the live HA manager in a thread of this process (SQLite, one instance) and runs
`corral ha drill`'s service on host 1: it SIGKILLs the host's libvirtd and QEMU through the
test fence agent and reports, from the manager's events, the seconds from the kill to
host_failed, host_fenced and vm_recovered, and the RTO (60 s) met or missed; then the set
is taken down. Needs root and `bash scripts/realhosts.sh up` done once (for the artifacts).

    python benchmarks/bench_ha_drill.py [--drills 3] [--grace 4] [--interval 1]
"""

from __future__ import annotations

import argparse
import logging
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import libvirt
import yaml
from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "realhost"))
from guest import guest_xml, make_disk, wait_for_console  # noqa: E402

from corral.config import Settings  # noqa: E402
from corral.inventory.service import Inventory  # noqa: E402
from corral.security.secrets import SecretBox  # noqa: E402
from corral.services import ha_live_views  # noqa: E402
from corral.services.ha_drill import DrillReport, DrillService  # noqa: E402
from corral.services.ha_live import HALiveService  # noqa: E402
from corral.services.ha_live_policy import parse_policy  # noqa: E402
from corral.store.db import Database  # noqa: E402

AGENT = ROOT / "tests" / "realhost" / "fence_realhost.py"
SHARED = Path("/work/main/var/realhosts")
HOSTS = ("ha1", "ha2", "ha3")


def realhosts(state: Path, *args: str) -> None:
    env = {"CORRAL_REALHOSTS_DIR": str(state), "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    script = str(ROOT / "scripts/realhosts.sh")
    done = subprocess.run(["bash", script, *args], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"realhosts.sh {' '.join(args)} failed:\n{done.stderr[-3000:]}")


def drill(work: Path, grace: float, interval: float) -> DrillReport:
    state = Path(f"/tmp/crl-hd-{uuid.uuid4().hex[:6]}")
    state.mkdir()
    shutil.copytree(SHARED / "guest", state / "guest")
    shutil.copytree(SHARED / "qemu-capabilities", state / "qemu-capabilities")
    try:
        realhosts(state, "up", "--hosts", "3")
        return _run(state, work, grace, interval)
    finally:
        realhosts(state, "down")
        shutil.rmtree(state, ignore_errors=True)


def _run(state: Path, work: Path, grace: float, interval: float) -> DrillReport:
    uris = [
        f"qemu+unix:///system?socket={state}/host{i}/run/libvirt/libvirt-sock" for i in (1, 2, 3)
    ]
    db = Database(f"sqlite:///{work / f'{state.name}.db'}")
    db.migrate()
    inventory = Inventory(db, SecretBox(Fernet.generate_key()))
    for name, uri in zip(HOSTS, uris, strict=True):
        inventory.add_host(name, uri)
    name = f"corral-drill-{uuid.uuid4().hex[:6]}"
    console = work / f"{name}.log"
    disk = make_disk(work / f"{name}.qcow2", 16)
    kernel, initrd = state / "guest/vmlinuz", state / "guest/initrd.img"
    xml = guest_xml(name, kernel=kernel, initrd=initrd, disk_path=disk, console_log=console,
                    disk_cache="none")  # fmt: skip
    conn = libvirt.open(uris[0])
    conn.defineXML(xml).create()
    wait_for_console(console, timeout_s=120)
    settings = Settings(home=work / "home", ha_grace_s=grace, ha_check_interval_s=interval)
    fence = {h: [{"name": "power", "method": "agent", "command": [sys.executable, str(AGENT)],
                  "options": {"host_dir": str(state / f"host{i + 1}")}, "timeout_s": 30}]
             for i, h in enumerate(HOSTS)}  # fmt: skip
    doc = {"fence": fence, "drills": {"allow": ["ha1"], "rto_s": 60, "timeout_s": 180}}
    policy = parse_policy(yaml.safe_load(yaml.safe_dump(doc)), settings)
    service = HALiveService(inventory, settings, policy=policy, instance="drill")
    stop = threading.Event()

    def lead() -> None:  # the manager, as `corral ha run` would, in a thread of its own
        while not stop.is_set():
            service.round()
            stop.wait(interval)

    thread = threading.Thread(target=lead, daemon=True)
    thread.start()
    try:
        while not any(v.name == name for v in ha_live_views.status(db).vms):
            time.sleep(0.2)
        return DrillService(inventory, settings, policy=policy).run("ha1")
    finally:
        stop.set()
        thread.join()
        service.close()


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--drills", type=int, default=3)
    parser.add_argument("--grace", type=float, default=4.0)
    parser.add_argument("--interval", type=float, default=1.0)
    args = parser.parse_args()
    rows: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.drills):
            report = drill(Path(tmp), args.grace, args.interval)
            [vm] = report.vms or [None]
            restart = vm.restart_s if vm and vm.restart_s is not None else float("nan")
            rows.append({"detection": report.detection_s or float("nan"),
                         "fenced": report.fence_s or float("nan"), "running": restart})  # fmt: skip
            met = "met" if report.all_met else f"MISSED ({', '.join(report.not_recovered)})"
            print(f"drill {i + 1}: detect {rows[-1]['detection']:.1f} s  fenced "
                  f"{rows[-1]['fenced']:.1f} s  running {restart:.1f} s  RTO {met}")  # fmt: skip
    print(f"\n{'seconds after the kill':<24}{'min':>8}{'median':>8}{'max':>8}")
    for key in ("detection", "fenced", "running"):
        values = [r[key] for r in rows]
        print(f"{key:<24}{min(values):>8.1f}{statistics.median(values):>8.1f}{max(values):>8.1f}")


if __name__ == "__main__":
    main()
