"""Backup executor benchmark on the real libvirtd hosts (scripts/realhosts.sh up).

    PYTHONPATH=src .venv/bin/python benchmarks/bench_backup_exec.py [--data-mib 256]

Fixed input: one TCG guest (96 MiB RAM) on host 1 with a 512 MiB qcow2 disk holding
``--data-mib`` MiB of written patterns. In the same run:

1. a plain copy of that disk (``cp`` of the file, and ``qemu-img convert -U``, which copies the
   allocated clusters as the backup does), then a full backup through ``corral``'s executor
   (libvirt push backup, unthrottled, + sha256 + manifest + atomic seal): throughput and the
   backup/copy ratio;
2. the guest restarts writing (load=disk: zeros over its first 16 MiB, again and again), then
   an incremental: its size against the 16 MiB the guest changed and the bytes it wrote;
3. restores: the full point and the full+incremental chain as new VMs (time to a defined VM),
   and the chain onto host 2 started, to the guest's ready line (restore to running: the RTO).

Prints one table. Figures move with the machine's load: run it when the machine is quiet.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests" / "realhost"), str(ROOT)]

from guest import GuestFactory, guest_xml, wait_for_console  # noqa: E402
from tests.realhost.conftest import load_realhost_env  # noqa: E402

from corral.engines.backup import Policy  # noqa: E402
from corral.engines.backup.policy import Planner  # noqa: E402
from corral.hypervisor.uri import HostAccess  # noqa: E402
from corral.inventory.service import Inventory  # noqa: E402
from corral.security.secrets import SecretBox  # noqa: E402
from corral.services.backup_exec import Executor, HostOpener  # noqa: E402
from corral.services.restore import Restorer  # noqa: E402
from corral.store.backup_repo import Repository, sha256  # noqa: E402
from corral.store.db import Database  # noqa: E402

MIB = 2**20


def _run(*args: str) -> float:
    start = time.perf_counter()
    subprocess.run(list(args), check=True, capture_output=True)
    return time.perf_counter() - start


def _disk(work: Path, data_mib: int) -> Path:
    disk = work / f"bk2-bench-{uuid.uuid4().hex[:6]}.qcow2"
    _run("qemu-img", "create", "-q", "-f", "qcow2", str(disk), "512M")
    for i, offset in enumerate(range(32, 32 + data_mib, 32)):  # 32 MiB runs of distinct bytes
        length = min(32, 32 + data_mib - offset)
        _run("qemu-io", "-f", "qcow2", "-c", f"write -P {0x21 + i} {offset}M {length}M", str(disk))
    return disk


def _restart_writing(guest: Any, env: Any) -> None:
    guest.dom.shutdown()
    while guest.dom.isActive():
        time.sleep(0.2)
    xml = guest_xml(
        guest.name, kernel=env.kernel, initrd=env.initrd, load="disk",
        disk_path=guest.disk_path, uuid=guest.uuid, console_log=guest.console_log,
    )  # fmt: skip
    guest.dom.connect().defineXML(xml)
    guest.console_log.write_text("")
    guest.dom.create()
    wait_for_console(guest.console_log, timeout_s=180)
    while guest.dom.blockStats("vda")[3] < 48 * MIB:  # three passes over the 16 MiB
        time.sleep(0.5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-mib", type=int, default=256)
    args = parser.parse_args()
    env = load_realhost_env()
    if isinstance(env, str):
        sys.exit(env)
    import libvirt

    conns = [libvirt.open(uri) for uri in env.uris[:2]]
    with tempfile.TemporaryDirectory(prefix="bk2-bench-") as tmp:
        work = Path(tmp)
        factory = GuestFactory(env, conns, work)
        made: list[tuple[Any, str]] = []
        try:
            rows = _bench(work, factory, env, args.data_mib, made)
        finally:
            for conn, name in made:
                dom = conn.lookupByName(name)
                if dom.isActive():
                    dom.destroy()
                dom.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA)
            factory.cleanup()
            for conn in conns:
                conn.close()
    width = max(len(r[0]) for r in rows)
    print(f"{'measure':<{width}}  value")
    for name, value in rows:
        print(f"{name:<{width}}  {value}")


def _bench(
    work: Path, factory: GuestFactory, env: Any, data_mib: int, made: list[tuple[Any, str]]
) -> list[tuple[str, str]]:
    db = Database(f"sqlite:///{work / 'corral.db'}")
    db.migrate()
    inv = Inventory(db, SecretBox(Fernet.generate_key()), access=HostAccess())
    for i, uri in enumerate(env.uris[:2], 1):
        inv.add_host(f"bench-{i}", uri)
    disk = _disk(work, data_mib)
    guest = factory(0, disk=disk, wait_ready=True)
    inv.sync()
    policy = Policy(planner=Planner(job_mib_s=100_000))  # unthrottled: the copy's own speed
    repo = Repository(work / "repo")
    executor = Executor(db, repo, policy, HostOpener.of(inv))
    restorer = Restorer(db, repo, HostOpener.of(inv))

    cp_s = _run("cp", "--sparse=always", str(disk), str(work / "plain-cp.qcow2"))
    plain = work / "plain.qcow2"
    convert_s = _run("qemu-img", "convert", "-U", "-O", "qcow2", str(disk), str(plain))
    start = time.perf_counter()
    full = executor.run(guest.name).outcomes[0]
    full_s = time.perf_counter() - start
    assert full.status == "done" and full.kind == "full", full
    allocated = plain.stat().st_size
    start = time.perf_counter()
    sha256(repo.folder(str(full.point)) / "vda.qcow2")
    hash_s = time.perf_counter() - start

    _restart_writing(guest, env)
    written = guest.dom.blockStats("vda")[3]
    start = time.perf_counter()
    inc = executor.run(guest.name).outcomes[0]
    inc_s = time.perf_counter() - start
    assert inc.status == "done" and inc.kind == "incremental", inc

    timings = []
    for point, host in ((full.point, None), (inc.point, None)):
        name = f"bk2-bench-{uuid.uuid4().hex[:6]}"
        start = time.perf_counter()
        done = restorer.restore(str(point), as_name=name, host=host, disk_dir=work, start=False)
        timings.append(time.perf_counter() - start)
        made.append((factory.conns[0], name))
        assert done.mode == "new"
    name = f"bk2-bench-{uuid.uuid4().hex[:6]}"
    start = time.perf_counter()
    restorer.restore(str(inc.point), as_name=name, host="bench-2", disk_dir=work)
    made.append((factory.conns[1], name))
    wait_for_console(work / f"{name}.serial.log", timeout_s=180)
    boot_s = time.perf_counter() - start

    mb = allocated / MIB
    return [
        ("disk data (allocated, MiB)", f"{mb:.1f}"),
        ("plain cp of the qcow2 file (s, MiB/s)", f"{cp_s:.2f}  {mb / cp_s:.0f}"),
        ("plain qemu-img convert -U (s, MiB/s)", f"{convert_s:.2f}  {mb / convert_s:.0f}"),
        ("full backup via executor (s, MiB/s)", f"{full_s:.2f}  {mb / full_s:.0f}"),
        ("  of which sha256 of the point's disk (s)", f"{hash_s:.2f}"),
        ("  backup time / qemu-img convert time", f"{full_s / convert_s:.2f}"),
        ("  backup time / cp time", f"{full_s / cp_s:.2f}"),
        ("guest rewrote (distinct MiB / MiB written)", f"16 / {written / MIB:.0f}"),
        ("incremental point (MiB of disk file, s)", f"{inc.bytes / MIB:.1f}  {inc_s:.2f}"),
        ("  incremental size / distinct bytes changed", f"{inc.bytes / (16 * MIB):.2f}"),
        ("restore full point as new VM (s)", f"{timings[0]:.2f}"),
        ("restore full+incremental as new VM (s)", f"{timings[1]:.2f}"),
        ("restore chain onto host 2, to guest ready (s)", f"{boot_s:.2f}"),
    ]


if __name__ == "__main__":
    main()
