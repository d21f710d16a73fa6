"""Plain typed input and output of the sprawl engines.

Input: VM, host and volume records shaped like the inventory, and metric
windows (numpy arrays on a fixed step, NaN where a sample is missing).
Output: a Finding carries its evidence, confidence, the money it holds per
month and the suggested action; InsufficientData says plainly that a detector
could not decide, so no default value is ever dressed up as a finding.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

import numpy as np
import numpy.typing as npt

from corral.domain.model import VMState as VMState
from corral.domain.sprawl import Category as Category
from corral.errors import ValidationError

FloatArray = npt.NDArray[np.float32]
MemorySource = Literal["balloon", "rss", "trace"]
# Preferred first: the balloon driver's guest view, then the host process RSS, then a trace.
MEMORY_SOURCES: tuple[MemorySource, ...] = ("balloon", "rss", "trace")
DEFAULT_STEP_S = 300


CATEGORY_RANK: Mapping[Category, int] = {c: i for i, c in enumerate(Category)}
# Governance findings put money at risk but are not waste by themselves: a busy VM without an
# owner may still do useful work. Reports show their money apart from the waste total.
GOVERNANCE: frozenset[Category] = frozenset({Category.no_owner, Category.no_purpose})


@dataclass(frozen=True)
class Snapshot:
    name: str
    created_at: datetime | None = None
    size_gb: float | None = None


@dataclass(frozen=True)
class Disk:
    path: str
    size_gb: float


@dataclass(frozen=True)
class VMRecord:
    """A VM as the inventory knows it (the fields the engines use)."""

    uuid: str
    name: str
    host: str | None = None
    state: VMState = VMState.running
    vcpus: int = 1
    memory_mib: int = 1024
    disks: tuple[Disk, ...] = ()
    snapshots: tuple[Snapshot, ...] = ()
    owner: str | None = None
    department: str | None = None
    purpose: str | None = None
    project: str | None = None
    environment: str | None = None
    expiry: datetime | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    created_at: datetime | None = None
    state_since: datetime | None = None
    os: str | None = None
    licences: tuple[str, ...] = ()

    @property
    def disk_gb(self) -> float:
        return sum(d.size_gb for d in self.disks)

    @property
    def snapshot_gb(self) -> float:
        return sum(s.size_gb or 0.0 for s in self.snapshots)

    @property
    def powered_on(self) -> bool:
        return self.state in (VMState.running, VMState.paused)


@dataclass(frozen=True)
class HostRecord:
    name: str
    cores: int = 0
    memory_mib: int = 0
    core_mhz: float | None = None
    licences: tuple[str, ...] = ()  # per-host licence products held (e.g. Windows Datacenter)


@dataclass(frozen=True)
class Volume:
    """A storage volume as the pools list it, used or not."""

    path: str
    size_gb: float
    pool: str | None = None
    host: str | None = None
    created_at: datetime | None = None


@dataclass(frozen=True)
class MetricBatch:
    """Metrics of many VMs on one time grid: arrays of shape (VMs, samples), NaN = missing.

    Column j is the sample at ``start + j * step_s`` (epoch seconds). A series a
    source does not provide at all is None; memory is keyed by its source.
    """

    vm_uuids: tuple[str, ...]
    start: int
    step_s: int = DEFAULT_STEP_S
    cpu_mhz: FloatArray | None = None
    cpu_pct: FloatArray | None = None
    disk_bytes_s: FloatArray | None = None
    net_bytes_s: FloatArray | None = None
    memory_mib: Mapping[MemorySource, FloatArray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        shape = (len(self.vm_uuids), self.samples)
        for name, arr in self._series():
            if arr.shape != shape:
                raise ValidationError(
                    f"metric series {name} has shape {arr.shape}, expected {shape}; "
                    "align every series on the same grid."
                )

    def _series(self) -> list[tuple[str, FloatArray]]:
        named = [
            ("cpu_mhz", self.cpu_mhz),
            ("cpu_pct", self.cpu_pct),
            ("disk_bytes_s", self.disk_bytes_s),
            ("net_bytes_s", self.net_bytes_s),
        ]
        out = [(n, a) for n, a in named if a is not None]
        return out + [(f"memory_mib[{k}]", v) for k, v in self.memory_mib.items()]

    @property
    def samples(self) -> int:
        for arr in (self.cpu_mhz, self.cpu_pct, self.disk_bytes_s, self.net_bytes_s):
            if arr is not None:
                return int(arr.shape[1])
        return next((int(a.shape[1]) for a in self.memory_mib.values()), 0)

    @property
    def end(self) -> int:
        """Epoch second just after the last sample."""
        return self.start + self.samples * self.step_s

    def timestamps(self) -> npt.NDArray[np.int64]:
        return self.start + self.step_s * np.arange(self.samples, dtype=np.int64)

    def rows(self) -> dict[str, int]:
        return {u: i for i, u in enumerate(self.vm_uuids)}

    def take(self, uuids: Sequence[str]) -> MetricBatch:
        """The rows of ``uuids`` that this batch holds, in that order (a chunk of a fleet)."""
        rows = self.rows()
        keep = [u for u in uuids if u in rows]
        idx = np.array([rows[u] for u in keep], dtype=np.int64)

        def pick(arr: FloatArray | None) -> FloatArray | None:
            return None if arr is None else arr[idx].reshape(len(keep), self.samples)

        return MetricBatch(
            vm_uuids=tuple(keep),
            start=self.start,
            step_s=self.step_s,
            cpu_mhz=pick(self.cpu_mhz),
            cpu_pct=pick(self.cpu_pct),
            disk_bytes_s=pick(self.disk_bytes_s),
            net_bytes_s=pick(self.net_bytes_s),
            memory_mib={
                k: v[idx].reshape(len(keep), self.samples) for k, v in self.memory_mib.items()
            },
        )


@dataclass(frozen=True)
class MetricWindow:
    """One VM's metrics: 1-D arrays aligned with ``timestamps`` (epoch s, fixed step)."""

    vm_uuid: str
    timestamps: npt.NDArray[np.int64]
    cpu_mhz: FloatArray | None = None
    cpu_pct: FloatArray | None = None
    disk_bytes_s: FloatArray | None = None
    net_bytes_s: FloatArray | None = None
    memory_mib: Mapping[MemorySource, FloatArray] = field(default_factory=dict)


def stack_windows(windows: Sequence[MetricWindow], step_s: int = DEFAULT_STEP_S) -> MetricBatch:
    """Place per-VM windows on one common grid (the union of their spans), NaN elsewhere."""
    if not windows:
        return MetricBatch(vm_uuids=(), start=0, step_s=step_s)
    starts = [int(w.timestamps[0]) for w in windows if len(w.timestamps)]
    ends = [int(w.timestamps[-1]) for w in windows if len(w.timestamps)]
    start = min(starts) if starts else 0
    samples = (max(ends) - start) // step_s + 1 if ends else 0
    names = ("cpu_mhz", "cpu_pct", "disk_bytes_s", "net_bytes_s")
    series = {n: _stack(windows, n, start, samples, step_s) for n in names}
    sources = {s for w in windows for s in w.memory_mib}
    memory = {s: _stack_memory(windows, s, start, samples, step_s) for s in sources}
    return MetricBatch(
        vm_uuids=tuple(w.vm_uuid for w in windows),
        start=start,
        step_s=step_s,
        memory_mib=memory,
        **series,
    )


def _stack(
    windows: Sequence[MetricWindow], name: str, start: int, samples: int, step_s: int
) -> FloatArray | None:
    if all(getattr(w, name) is None for w in windows):
        return None
    return _place(windows, lambda w: getattr(w, name), start, samples, step_s)


def _stack_memory(
    windows: Sequence[MetricWindow], source: MemorySource, start: int, samples: int, step_s: int
) -> FloatArray:
    return _place(windows, lambda w: w.memory_mib.get(source), start, samples, step_s)


def _place(
    windows: Sequence[MetricWindow],
    pick: Callable[[MetricWindow], FloatArray | None],
    start: int,
    samples: int,
    step_s: int,
) -> FloatArray:
    out = np.full((len(windows), samples), np.nan, dtype=np.float32)
    for i, w in enumerate(windows):
        values = pick(w)
        if values is None or not len(w.timestamps):
            continue
        cols = (w.timestamps - start) // step_s
        out[i, cols] = values
    return out


@dataclass(frozen=True)
class Evidence:
    """The measured numbers behind a finding and the window they were measured over."""

    measures: Mapping[str, float | int | str]
    window_start: datetime | None = None
    window_end: datetime | None = None


@dataclass(frozen=True)
class Finding:
    """One reclamation candidate: a VM (or an orphaned volume) and what it holds."""

    subject: str  # VM uuid, or volume path for orphaned disks
    subject_name: str
    category: Category
    detector: str
    evidence: Evidence
    confidence: float
    monthly_cost_held: float
    suggested_action: str
    also_matched: tuple[Category, ...] = ()  # other categories this VM matched (dedupe)


@dataclass(frozen=True)
class InsufficientData:
    """A detector could not decide for this subject; says what it had and what it needed."""

    subject: str
    subject_name: str
    detector: str
    reason: str


Outcome = Finding | InsufficientData


def epoch_to_datetime(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)
