"""Fixed, seeded test-driver fleets for the benchmarks: N hosts x M VMs as node files."""

from __future__ import annotations

import random
import uuid as uuidlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lxml import etree

TEST_NS = "http://libvirt.org/schemas/domain/test/1.0"
CORRAL_NS = "urn:corral:vm:1"

if TYPE_CHECKING:
    from datetime import datetime

    import numpy as np

    from corral.engines.sprawl import VMRecord
    from corral.services.records import FleetRecords

CPU_FIELDS = (
    ("mhz", "2600"),
    ("model", "Cascadelake-Server"),
    ("nodes", "1"),
    ("sockets", "2"),
    ("cores", "32"),
    ("threads", "2"),
    ("active", "128"),
)


def write_fleet(folder: Path, hosts: int, vms_per_host: int, seed: int = 42) -> list[Path]:
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for h in range(hosts):
        node = etree.Element("node", nsmap={"test": TEST_NS})
        cpu = etree.SubElement(node, "cpu")
        for tag, val in CPU_FIELDS:
            etree.SubElement(cpu, tag).text = val
        etree.SubElement(node, "memory").text = str(4 * 1024**3)  # KiB: 4 TiB
        pool = etree.Element("pool", type="dir")
        etree.SubElement(pool, "name").text = "images"
        etree.SubElement(pool, "uuid").text = str(uuidlib.UUID(int=rng.getrandbits(128)))
        etree.SubElement(pool, "capacity", unit="TiB").text = "100"
        etree.SubElement(etree.SubElement(pool, "target"), "path").text = f"/images/h{h}"
        for i in range(vms_per_host):
            name = f"h{h:03d}-vm{i:05d}"
            d = etree.SubElement(node, "domain", type="test")
            etree.SubElement(d, "name").text = name
            etree.SubElement(d, "uuid").text = str(
                uuidlib.UUID(int=rng.getrandbits(128), version=4)
            )
            md = etree.SubElement(
                etree.SubElement(d, "metadata"), f"{{{CORRAL_NS}}}vm", nsmap={"corral": CORRAL_NS}
            )
            if rng.random() < 0.85:
                etree.SubElement(md, f"{{{CORRAL_NS}}}owner").text = f"user{rng.randrange(200)}"
            etree.SubElement(md, f"{{{CORRAL_NS}}}department").text = rng.choice(
                ["Finance", "R&D", "Sales", "HR", "IT"]
            )
            etree.SubElement(d, "memory", unit="MiB").text = str(
                rng.choice([1024, 2048, 4096, 8192, 16384])
            )
            etree.SubElement(d, "vcpu").text = str(rng.choice([1, 2, 4, 8]))
            etree.SubElement(etree.SubElement(d, "os"), "type").text = "hvm"
            dev = etree.SubElement(d, "devices")
            disk = etree.SubElement(dev, "disk", type="file", device="disk")
            etree.SubElement(disk, "source", file=f"/images/h{h}/{name}.qcow2")
            etree.SubElement(disk, "target", dev="vda", bus="virtio")
            nic = etree.SubElement(dev, "interface", type="network")
            etree.SubElement(
                nic,
                "mac",
                address=f"52:54:{h & 255:02x}:{i >> 16 & 255:02x}:{i >> 8 & 255:02x}:{i & 255:02x}",
            )
            etree.SubElement(nic, "source", network="default")
            etree.SubElement(d, f"{{{TEST_NS}}}runstate").text = "5" if rng.random() < 0.3 else "1"
            vol = etree.SubElement(pool, "volume", type="file")
            etree.SubElement(vol, "name").text = f"{name}.qcow2"
            etree.SubElement(vol, "capacity", unit="GiB").text = str(rng.choice([20, 40, 80]))
            etree.SubElement(
                etree.SubElement(vol, "target"), "path"
            ).text = f"/images/h{h}/{name}.qcow2"
        node.append(pool)
        path = folder / f"host{h:03d}.xml"
        path.write_bytes(etree.tostring(node))
        paths.append(path)
    return paths


# -- a fleet for the sprawl report at scale: records and 30 days of rolled-up history ---------
SPRAWL_SERIES = (
    "cpu_pct",
    "disk_read_bytes_per_s",
    "disk_write_bytes_per_s",
    "net_rx_bytes_per_s",
    "net_tx_bytes_per_s",
    "mem_used_pct",
)


def sprawl_fleet(vms: int, hosts: int, now: datetime, seed: int = 42) -> FleetRecords:
    """``vms`` VMs spread over ``hosts`` hosts, with the sprawl the detectors look for: 8 %
    shut off, 10 % without owner, 15 % without purpose, 5 % past their lease, 20 % with an
    old snapshot; 7 % of the disks are orphaned volumes."""
    from datetime import timedelta

    from corral.engines.sprawl import Disk, HostRecord, Snapshot, VMRecord, VMState, Volume
    from corral.services.records import FleetRecords

    rng = random.Random(seed)
    host_recs = tuple(HostRecord(f"host-{h:05d}", 64, 1024 * 1024, 2600.0) for h in range(hosts))
    records = []
    for i in range(vms):
        vcpus, mem = rng.choice(((1, 2048), (2, 4096), (2, 8192), (4, 16384), (8, 32768)))
        path = f"/images/vm-{i:06d}.qcow2"
        off = rng.random() < 0.08
        records.append(
            VMRecord(
                uuid=str(uuidlib.UUID(int=rng.getrandbits(128), version=4)),
                name=f"vm-{i:06d}",
                host=host_recs[i % hosts].name,
                state=VMState.shutoff if off else VMState.running,
                vcpus=vcpus,
                memory_mib=mem,
                disks=(Disk(path, float(rng.choice((20, 40, 80, 160)))),),
                snapshots=(Snapshot("before-upgrade", now - timedelta(days=60), 10.0),)
                if rng.random() < 0.2
                else (),
                owner=None if rng.random() < 0.10 else f"user{rng.randrange(500)}",
                purpose=None if rng.random() < 0.15 else "service",
                expiry=now - timedelta(days=3) if rng.random() < 0.05 else None,
                created_at=now - timedelta(days=400),
                state_since=now - timedelta(days=45 if off else 200),
            )
        )
    orphans = tuple(
        Volume(f"/images/orphan-{j:06d}.qcow2", 100.0, "images", host_recs[j % hosts].name)
        for j in range(round(0.07 * vms))
    )
    return FleetRecords(vms=tuple(records), hosts=host_recs, volumes=orphans, now=now)


def write_sprawl_history(
    path: Path, fleet: FleetRecords, days: int, resolution: int, seed: int = 42, batch: int = 1000
) -> int:
    """``days`` of history of every running VM as rollup rows at ``resolution`` seconds, written
    straight into a DuckDB metrics file, with raw samples marked as aged out (so reads go to the
    rollups, as they would once the store's raw retention has passed). 30 % of the running VMs
    are idle; the others follow office hours. Returns the rollup rows written."""
    import duckdb
    import numpy as np

    from corral.metrics.store import DuckDBStore

    DuckDBStore(path).close()  # the schema
    assert fleet.now is not None
    end = int(fleet.now.timestamp()) // resolution * resolution
    start = end - days * 86400
    ts = np.arange(start, end, resolution, dtype=np.int64)
    on = [(i, vm) for i, vm in enumerate(fleet.vms) if vm.powered_on]
    rng = np.random.default_rng(seed)
    db = duckdb.connect(str(path))
    _write_series(db, fleet)
    rows = 0
    for lo in range(0, len(on), batch):
        part = on[lo : lo + batch]
        cols = _history_rows(part, ts, resolution, rng)  # noqa: F841  (read by DuckDB by name)
        db.execute(f"INSERT INTO rollup_{resolution} SELECT * FROM cols")
        rows += len(part) * len(ts) * len(SPRAWL_SERIES)
    for name, value in (("horizon_0", end), (f"rolled_{resolution}", end)):
        db.execute("INSERT OR REPLACE INTO marks VALUES (?, ?)", [name, value])
    db.close()
    return rows


def _write_series(db: Any, fleet: FleetRecords) -> None:
    import numpy as np

    n = len(fleet.vms) * len(SPRAWL_SERIES)
    names = {  # noqa: F841  (read by DuckDB by name; "series" would be the table)
        "id": np.arange(n, dtype=np.int32),
        "kind": np.array(["vm"] * n, dtype=object),
        "entity": np.array([vm.uuid for vm in fleet.vms for _ in SPRAWL_SERIES], dtype=object),
        "metric": np.array(list(SPRAWL_SERIES) * len(fleet.vms), dtype=object),
    }
    db.execute("INSERT INTO series SELECT id, kind, entity, metric FROM names")


def _history_rows(
    part: list[tuple[int, VMRecord]],
    ts: np.ndarray[Any, Any],
    resolution: int,
    rng: np.random.Generator,
) -> dict[str, np.ndarray[Any, Any]]:
    """Rollup columns of one batch of running VMs, series id = VM index * 6 + metric."""
    import numpy as np

    k, t = len(part), len(ts)
    hour = (ts % 86400) // 3600
    office = np.where((hour >= 8) & (hour < 18), 1.0, 0.15)[None, :]
    idle = rng.random(k) < 0.3
    noise = np.exp(rng.standard_normal((k, t)) * 0.3)
    vcpus = np.array([vm.vcpus for _, vm in part], dtype=np.float64)[:, None]
    level = rng.lognormal(np.log(12.0), 0.8, k)[:, None]
    quiet_cpu = 30.0 / (vcpus * 2600.0) * 100.0  # about 30 MHz
    act = np.where(idle[:, None], 0.0, office * noise)
    cpu = np.clip(np.where(idle[:, None], quiet_cpu * noise, level * act), 0, 100)
    io = act * 1.0e6 + 2.0e3 * noise
    net = act * 2.5e5 + 1.0e3 * noise
    mem = np.broadcast_to(rng.uniform(30, 80, k)[:, None], (k, t)) * (0.9 + 0.1 * office)
    avg = np.stack([cpu, io, io, net, net, mem], axis=1)  # (vms, metrics, samples)
    sid = np.array([i for i, _ in part], dtype=np.int64)[:, None] * len(SPRAWL_SERIES)
    sid = sid + np.arange(len(SPRAWL_SERIES))[None, :]
    flat_avg = avg.reshape(-1)
    return {
        "sid": np.repeat(sid.reshape(-1), t).astype(np.int32),
        "ts": np.tile(ts, k * len(SPRAWL_SERIES)),
        "n": np.full(flat_avg.shape, resolution // 300, dtype=np.int64),
        "vmin": flat_avg * 0.5,
        "vavg": flat_avg,
        "vmax": flat_avg * 1.8,
        "vp95": flat_avg * 1.5,
    }
