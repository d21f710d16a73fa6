"""Plain data that flows through metrics: raw counters in, samples out.

Raw counters are what a hypervisor reports at one instant (monotonic
counters and gauges). Samples are what Corral stores: one value of one
metric of one entity (a VM by its libvirt UUID, or a host by its name) at one
time, labelled with the host the entity was on.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt


class EntityKind(enum.StrEnum):
    vm = "vm"
    host = "host"
    collector = "collector"


class Stat(enum.StrEnum):
    """How samples inside one time bucket are summarised."""

    avg = "avg"
    min = "min"
    max = "max"
    p95 = "p95"


@dataclass(frozen=True, slots=True)
class DomainCounters:
    """One running domain's counters; None where the driver gives nothing."""

    uuid: str
    name: str
    vcpus: int
    cpu_time_ns: int | None = None
    vcpu_wait_ns: int | None = None
    vcpu_delay_ns: int | None = None
    disk_rd_bytes: int | None = None
    disk_wr_bytes: int | None = None
    disk_rd_reqs: int | None = None
    disk_wr_reqs: int | None = None
    net_rx_bytes: int | None = None
    net_tx_bytes: int | None = None
    net_rx_pkts: int | None = None
    net_tx_pkts: int | None = None
    balloon_actual_kib: int | None = None
    balloon_available_kib: int | None = None
    balloon_unused_kib: int | None = None
    balloon_rss_kib: int | None = None
    swap_in_kib: int | None = None
    swap_out_kib: int | None = None


@dataclass(frozen=True, slots=True)
class HostCounters:
    """A host's own counters: CPU time by state (ns), memory (KiB) and its active storage
    pools' capacity and allocation summed (bytes; a shared pool counts on every host)."""

    cpus: int
    cpu_user_ns: int | None = None
    cpu_kernel_ns: int | None = None
    cpu_idle_ns: int | None = None
    cpu_iowait_ns: int | None = None
    mem_total_kib: int | None = None
    mem_free_kib: int | None = None
    storage_total_bytes: int | None = None
    storage_used_bytes: int | None = None


@dataclass(frozen=True, slots=True)
class HostSample:
    """Everything read from one host in one cycle, at time ``ts`` (epoch seconds)."""

    host: str
    ts: float
    node: HostCounters
    domains: tuple[DomainCounters, ...] = ()


@dataclass(frozen=True, slots=True)
class Sample:
    """One stored value."""

    kind: EntityKind
    entity: str
    host: str
    metric: str
    ts: int
    value: float


@dataclass(frozen=True, slots=True, order=True)
class SeriesKey:
    kind: EntityKind
    entity: str
    metric: str


IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class SampleBatch:
    """Many samples in columns, the unit every store writes.

    ``series[i]`` and ``hosts[i]`` are looked up through ``series_idx`` and
    ``host_idx``, so a batch of millions of samples carries each name once.
    """

    series: Sequence[SeriesKey]
    hosts: Sequence[str]
    series_idx: IntArray
    host_idx: IntArray
    ts: IntArray
    values: FloatArray = field(repr=False)

    def __len__(self) -> int:
        return int(self.ts.shape[0])

    @staticmethod
    def from_samples(samples: Sequence[Sample]) -> SampleBatch:
        keys: dict[SeriesKey, int] = {}
        hosts: dict[str, int] = {}
        n = len(samples)
        sidx = np.empty(n, dtype=np.int64)
        hidx = np.empty(n, dtype=np.int64)
        for i, s in enumerate(samples):
            sidx[i] = keys.setdefault(SeriesKey(s.kind, s.entity, s.metric), len(keys))
            hidx[i] = hosts.setdefault(s.host, len(hosts))
        ts = np.fromiter((s.ts for s in samples), dtype=np.int64, count=n)
        values = np.fromiter((s.value for s in samples), dtype=np.float64, count=n)
        return SampleBatch(list(keys), list(hosts), sidx, hidx, ts, values)

    def last_per_series_and_time(self) -> SampleBatch:
        """One sample per (series, time): the last one given wins, as a later write would."""
        canon: dict[SeriesKey, int] = {}
        remap = np.array([canon.setdefault(k, len(canon)) for k in self.series], dtype=np.int64)
        sidx = remap[self.series_idx] if len(self.series) else self.series_idx
        order = np.lexsort((np.arange(len(self)), self.ts, sidx))
        s, t = sidx[order], self.ts[order]
        last = np.r_[(s[1:] != s[:-1]) | (t[1:] != t[:-1]), True] if len(order) else order
        keep = order[last]
        if len(keep) == len(self) and len(canon) == len(self.series):
            return self
        return SampleBatch(
            list(canon),
            self.hosts,
            sidx[keep],
            self.host_idx[keep],
            self.ts[keep],
            self.values[keep],
        )

    def to_samples(self) -> list[Sample]:
        out = []
        for si, hi, t, v in zip(
            self.series_idx.tolist(),
            self.host_idx.tolist(),
            self.ts.tolist(),
            self.values.tolist(),
            strict=True,
        ):
            key = self.series[si]
            out.append(Sample(key.kind, key.entity, self.hosts[hi], key.metric, t, v))
        return out


@dataclass(frozen=True, slots=True)
class Point:
    ts: int
    value: float


@dataclass(frozen=True, slots=True)
class RollupRow:
    """One rollup bucket: [ts, ts + resolution) summarised."""

    ts: int
    count: int
    min: float
    avg: float
    max: float
    p95: float


@dataclass(frozen=True, slots=True)
class Ranked:
    """One entity's value in a fleet-wide ranking."""

    entity: str
    value: float


@dataclass(frozen=True, slots=True)
class Latest:
    """The newest value of one series, with the host it was seen on."""

    kind: EntityKind
    entity: str
    host: str
    metric: str
    ts: int
    value: float


def empty_batch() -> SampleBatch:
    z = np.zeros(0, dtype=np.int64)
    return SampleBatch([], [], z, z, z, np.zeros(0, dtype=np.float64))
