"""The seed's figure as a scenario: a seeded fleet with stated sprawl rates, run through the
real detectors, right-sizing and cost model (the money is computed, never assumed).

Seed 000 quotes an Embotics white paper: "in a 150-VM environment sprawl wastes
$50,000 to $150,000". Each rate below says where it comes from; rates without a
public source are marked as assumptions, to be replaced with a site's own numbers.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta

import numpy as np

from corral.engines.costing import CostModel
from corral.engines.sprawl.analysis import SprawlAnalysis, analyse
from corral.engines.sprawl.model import (
    Disk,
    HostRecord,
    MetricBatch,
    Snapshot,
    VMRecord,
    VMState,
    Volume,
)
from corral.engines.sprawl.synthetic import SyntheticVMs, synthetic_batch

SCENARIO_START = datetime(2026, 1, 1, tzinfo=UTC)
BITBRAINS = "Corral's own run on Bitbrains GWA-T-12 Rnd, July 2013 (corral sprawl bitbrains)"


@dataclass(frozen=True)
class ScenarioAssumptions:
    """Sprawl rates of the scenario fleet (shares are of all VMs unless stated)."""

    days: int = 30
    powered_off_share: float = 0.08
    idle_share: float = 0.30  # of powered-on VMs
    snapshot_share: float = 0.20
    snapshot_fraction_of_disk: float = 0.25
    orphaned_disks_per_vm: float = 0.07
    no_owner_share: float = 0.10
    no_purpose_share: float = 0.15
    expired_share: float = 0.05
    busy_cpu_median_pct: float = 12.0  # mid-day CPU % of provisioned, busy VMs (log-normal)
    windows_share: float = 0.40
    rhel_share: float = 0.20
    vms_per_host: int = 15


SOURCES: dict[str, str] = {
    "days": "observation window: one month, as in the Bitbrains Rnd month traces",
    "powered_off_share": "assumption (no public rate found); powered off > 30 days",
    "idle_share": (
        "Koomey & Taylor, 'Zombie/Comatose Servers Redux' (Anthesis/Stanford, 2017): about 30% "
        f"of VMs comatose; {BITBRAINS}: 136 idle of 437 decided VMs (31%)"
    ),
    "snapshot_share": "assumption: VMs keeping a snapshot older than 14 days",
    "snapshot_fraction_of_disk": "assumption: delta size of a weeks-old snapshot",
    "orphaned_disks_per_vm": "assumption: leftover volumes of deleted VMs, 50-200 GB each",
    "no_owner_share": "assumption (governance: shown as money at risk, not counted as waste)",
    "no_purpose_share": "assumption (governance: shown as money at risk, not counted as waste)",
    "expired_share": "assumption: VMs past their lease date",
    "busy_cpu_median_pct": (
        f"{BITBRAINS}: median p95 CPU of a VM is 1.9% of provisioned, upper quartile 8.3%; "
        "12% mid-day is a less extreme, office-hours fleet"
    ),
    "windows_share": "assumption: OS mix; Windows uses the per-VM Standard licence",
    "rhel_share": "assumption: OS mix; the rest runs a licence-free Linux",
    "vms_per_host": "consolidation ratio 15:1 (MISSION S3)",
}


@dataclass(frozen=True)
class ScenarioFleet:
    vms: tuple[VMRecord, ...]
    hosts: tuple[HostRecord, ...]
    volumes: tuple[Volume, ...]
    metrics: MetricBatch
    now: datetime


_SIZES = ((1, 2048), (2, 4096), (2, 8192), (4, 16384), (8, 32768))
_SIZE_WEIGHTS = (0.15, 0.30, 0.25, 0.20, 0.10)


def describe(assumptions: ScenarioAssumptions) -> list[dict[str, object]]:
    """Each assumption with its value and source, for reports."""
    return [
        {"assumption": k, "value": v, "source": SOURCES.get(k, "")}
        for k, v in asdict(assumptions).items()
    ]


def build_fleet(vms: int, seed: int, a: ScenarioAssumptions | None = None) -> ScenarioFleet:
    """A seeded fleet of ``vms`` VMs with the assumed sprawl rates and metric history."""
    a = a or ScenarioAssumptions()
    rng = np.random.default_rng(seed)
    now = SCENARIO_START + timedelta(days=a.days)
    n_hosts = max(1, math.ceil(vms / a.vms_per_host))
    hosts = tuple(HostRecord(f"host-{h:02d}", 32, 512 * 1024, 2600.0) for h in range(n_hosts))
    records = tuple(_vm(i, rng, a, now, hosts[i % n_hosts].name) for i in range(vms))
    volumes = tuple(v.disks[0] for v in records)
    pool = [Volume(d.path, d.size_gb, "default") for d in volumes]
    pool += _orphans(rng, round(a.orphaned_disks_per_vm * vms), now)
    metrics = _metrics(records, rng, a)
    return ScenarioFleet(records, hosts, tuple(pool), metrics, now)


def run_scenario(
    model: CostModel, vms: int = 150, seed: int = 1, a: ScenarioAssumptions | None = None
) -> SprawlAnalysis:
    """Build the fleet and run the full analysis on it."""
    fleet = build_fleet(vms, seed, a)
    return analyse(
        fleet.vms,
        fleet.now,
        model,
        hosts=fleet.hosts,
        volumes=fleet.volumes,
        metrics=fleet.metrics,
    )


def _vm(
    i: int, rng: np.random.Generator, a: ScenarioAssumptions, now: datetime, host: str
) -> VMRecord:
    vcpus, mem = _SIZES[rng.choice(len(_SIZES), p=_SIZE_WEIGHTS)]
    disk_gb = float(rng.integers(40, 201))
    off = rng.random() < a.powered_off_share
    return VMRecord(
        uuid=f"vm-{i:05d}",
        name=f"vm-{i:05d}",
        host=host,
        state=VMState.shutoff if off else VMState.running,
        vcpus=vcpus,
        memory_mib=mem,
        disks=(Disk(f"/var/lib/libvirt/images/vm-{i:05d}.qcow2", disk_gb),),
        snapshots=_snapshots(rng, a, now, disk_gb),
        owner=None if rng.random() < a.no_owner_share else f"user{i % 23}",
        department=f"dept-{i % 5}",
        purpose=None if rng.random() < a.no_purpose_share else "service",
        project=f"project-{i % 11}",
        environment=("prod", "test", "dev")[i % 3],
        expiry=_expiry(rng, a, now),
        state_since=now - timedelta(days=float(rng.uniform(31, 180))) if off else None,
        os=_os(rng, a),
    )


def _snapshots(
    rng: np.random.Generator, a: ScenarioAssumptions, now: datetime, disk_gb: float
) -> tuple[Snapshot, ...]:
    if rng.random() >= a.snapshot_share:
        return ()
    age = timedelta(days=float(rng.uniform(15, 120)))
    return (Snapshot("before-upgrade", now - age, disk_gb * a.snapshot_fraction_of_disk),)


def _expiry(rng: np.random.Generator, a: ScenarioAssumptions, now: datetime) -> datetime | None:
    roll = rng.random()
    if roll < a.expired_share:
        return now - timedelta(days=float(rng.uniform(1, 90)))
    return now + timedelta(days=180) if roll < 0.5 else None


def _os(rng: np.random.Generator, a: ScenarioAssumptions) -> str:
    roll = rng.random()
    if roll < a.windows_share:
        return "windows-server-2022"
    return "rhel-9" if roll < a.windows_share + a.rhel_share else "ubuntu-24.04"


def _orphans(rng: np.random.Generator, count: int, now: datetime) -> list[Volume]:
    return [
        Volume(
            f"/var/lib/libvirt/images/old-{k:04d}.qcow2",
            float(rng.integers(50, 201)),
            "default",
            created_at=now - timedelta(days=float(rng.uniform(30, 400))),
        )
        for k in range(count)
    ]


def _metrics(
    records: tuple[VMRecord, ...], rng: np.random.Generator, a: ScenarioAssumptions
) -> MetricBatch:
    on = [vm for vm in records if vm.powered_on]
    n = len(on)
    params = SyntheticVMs(
        uuids=tuple(vm.uuid for vm in on),
        vcpus=np.array([vm.vcpus for vm in on], dtype=np.float32),
        memory_mib=np.array([vm.memory_mib for vm in on], dtype=np.float32),
        idle=rng.random(n) < a.idle_share,
        cpu_level_pct=rng.lognormal(math.log(a.busy_cpu_median_pct), 0.8, n).astype(np.float32),
        memory_fraction=rng.uniform(0.3, 0.8, n).astype(np.float32),
    )
    start = int((SCENARIO_START).timestamp())
    return synthetic_batch(params, a.days, start, rng)
