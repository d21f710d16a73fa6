"""Real traces played onto VMs: a filled past (backfill) and a live present (a StatsSource).

The trace of a VM and where in it the VM starts are chosen from a seeded
generator over the VMs sorted by UUID, so the same seed gives the same fleet
history on every run. Position in a trace depends only on the clock
(``ts // 300 + offset``), so the live source continues exactly where a
backfill of the same seed ended.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from corral.errors import ValidationError
from corral.metrics.clock import Clock, SystemClock
from corral.metrics.model import (
    DomainCounters,
    EntityKind,
    FloatArray,
    HostCounters,
    HostSample,
    SampleBatch,
    SeriesKey,
)
from corral.metrics.store.base import MetricsStore
from corral.metrics.traces import STEP_S, Trace, TraceFormat, load_traces, trace_files

VMSpec = tuple[str, str, int, int]  # (uuid, host, vcpus, memory_mib)
_NS = 1_000_000_000
_BATCH_SAMPLES = 4_000_000


@dataclass(frozen=True)
class Assignment:
    """Which trace drives a VM, and its starting offset (in 300 s steps)."""

    uuid: str
    host: str
    vcpus: int
    memory_mib: int
    trace: Trace
    offset: int

    def window(self, metric: str, first_step: int, n: int) -> FloatArray:
        """Values for grid steps ``first_step .. first_step + n - 1`` (epoch step numbers)."""
        col = self.trace.columns[metric]
        idx = (np.arange(first_step, first_step + n) + self.offset) % len(col)
        return col[idx]


def assign(
    vms: Sequence[VMSpec], trace_dir: Path, seed: int = 0, fmt: TraceFormat = "auto"
) -> list[Assignment]:
    """Map every VM to a trace and an offset, deterministically; loads and validates traces."""
    if not vms:
        return []
    kind, files = trace_files(Path(trace_dir), fmt)
    names = sorted(files)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(names))
    ordered = sorted(vms, key=lambda v: v[0])
    picked = [names[int(order[i % len(names)])] for i in range(len(ordered))]
    traces = load_traces(kind, files, picked)
    offsets = rng.integers(0, 1 << 30, size=len(ordered))
    return [
        Assignment(u, h, int(c), int(m), traces[t], int(o))
        for (u, h, c, m), t, o in zip(ordered, picked, offsets.tolist(), strict=True)
    ]


def _check_metrics(assignments: Sequence[Assignment], metrics: Sequence[str] | None) -> list[str]:
    have = list(assignments[0].trace.columns)
    if metrics is None:
        return have
    missing = [m for m in metrics if m not in have]
    if missing:
        raise ValidationError(
            f"these traces give no {', '.join(missing)}; they give {', '.join(have)}."
        )
    return list(metrics)


def backfill(
    store: MetricsStore,
    vms: Sequence[VMSpec],
    trace_dir: Path | str,
    days: float,
    end: float | None = None,
    seed: int = 0,
    *,
    fmt: TraceFormat = "auto",
    metrics: Sequence[str] | None = None,
    rollup: bool = True,
    progress: Callable[[str], None] | None = None,
) -> int:
    """Write ``days`` of trace-driven history for ``vms`` ending at ``end`` (default now).

    Every trace file is read and checked before the first sample is written.
    Writing a (series, time) again replaces it, so a re-run, or a run after a
    killed one, leaves exactly what one run leaves. Returns the number of samples
    written; ``progress`` hears of each step.
    """
    say = progress or (lambda _: None)
    if days <= 0:
        raise ValidationError(f"days must be positive, not {days}.")
    assignments = assign(vms, Path(trace_dir), seed, fmt)
    if not assignments:
        return 0
    names = _check_metrics(assignments, metrics)
    last = int(end if end is not None else time.time()) // STEP_S
    n_steps = int(days * 86400) // STEP_S
    first = last - n_steps
    written = 0
    per_batch = max(1, _BATCH_SAMPLES // n_steps)
    for metric in names:  # one metric at a time: its samples stay together on disk
        for lo in range(0, len(assignments), per_batch):
            chunk = assignments[lo : lo + per_batch]
            written += store.write(_history_batch(chunk, [metric], first, n_steps))
        say(f"wrote {metric} for {len(assignments)} VMs")
    if rollup:
        say("rolling up")
        store.rollup(last * STEP_S)
        say("rolled up")
    return written


def _history_batch(
    chunk: Sequence[Assignment], metrics: Sequence[str], first: int, n: int
) -> SampleBatch:
    keys = [SeriesKey(EntityKind.vm, a.uuid, m) for a in chunk for m in metrics]
    hosts = list(dict.fromkeys(a.host for a in chunk))
    host_of = {h: i for i, h in enumerate(hosts)}
    values = np.concatenate([a.window(m, first, n) for a in chunk for m in metrics])
    series_idx = np.repeat(np.arange(len(keys), dtype=np.int64), n)
    host_idx = np.repeat(
        np.array([host_of[a.host] for a in chunk for _ in metrics], dtype=np.int64), n
    )
    ts = np.tile((first + np.arange(n, dtype=np.int64)) * STEP_S, len(keys))
    return SampleBatch(keys, hosts, series_idx, host_idx, ts, values)


class TraceReplaySource:
    """A StatsSource whose counters grow as the traces say: the live present of a demo fleet.

    Counters are integrals of the trace over time, so the rate engine turns
    them back into the trace's values, just as it does for libvirt's counters.
    """

    def __init__(
        self,
        assignments: Sequence[Assignment],
        clock: Clock | None = None,
        host_cpus: int = 32,
        host_mem_mib: int = 256 * 1024,
    ) -> None:
        self.clock = clock or SystemClock()
        self.host_cpus = host_cpus
        self.host_mem_mib = host_mem_mib
        self._by_host: dict[str, list[Assignment]] = {}
        for a in assignments:
            self._by_host.setdefault(a.host, []).append(a)
        self._cum = {a.uuid: _cumulative(a.trace) for a in assignments}

    def hosts(self) -> list[str]:
        return sorted(self._by_host)

    def read(self, host: str) -> HostSample:
        now = self.clock.now()
        doms = tuple(self._domain(a, now) for a in self._by_host.get(host, []))
        busy = sum(d.cpu_time_ns or 0 for d in doms)
        total = int(now * _NS) * self.host_cpus
        used_kib = sum(a.memory_mib for a in self._by_host.get(host, [])) * 1024
        node = HostCounters(
            cpus=self.host_cpus,
            cpu_user_ns=busy,
            cpu_kernel_ns=0,
            cpu_idle_ns=max(0, total - busy),
            mem_total_kib=self.host_mem_mib * 1024,
            mem_free_kib=max(1, self.host_mem_mib * 1024 - used_kib),
        )
        return HostSample(host, now, node, doms)

    def _integral(self, a: Assignment, metric: str, now: float) -> float:
        """Integral of the metric from time 0 to ``now`` (value x seconds)."""
        cum, col = self._cum[a.uuid][metric], a.trace.columns[metric]
        pos = now / STEP_S + a.offset
        laps, rest = divmod(pos, len(col))
        k = int(rest)
        return float((laps * cum[-1] + cum[k] + (rest - k) * col[k]) * STEP_S)

    def _domain(self, a: Assignment, now: float) -> DomainCounters:
        cols = a.trace.columns

        def counter(metric: str, scale: float) -> int | None:
            return int(self._integral(a, metric, now) * scale) if metric in cols else None

        mem_kib = a.memory_mib * 1024
        used = cols.get("mem_used_pct")
        unused = None
        if used is not None:
            pct = float(used[int(now // STEP_S + a.offset) % len(used)])
            unused = int(mem_kib * (1 - pct / 100))
        return DomainCounters(
            uuid=a.uuid,
            name=a.uuid[:8],
            vcpus=a.vcpus,
            cpu_time_ns=counter("cpu_pct", a.vcpus * _NS / 100),
            disk_rd_bytes=counter("disk_read_bytes_per_s", 1.0),
            disk_wr_bytes=counter("disk_write_bytes_per_s", 1.0),
            net_rx_bytes=counter("net_rx_bytes_per_s", 1.0),
            net_tx_bytes=counter("net_tx_bytes_per_s", 1.0),
            balloon_actual_kib=mem_kib,
            balloon_available_kib=mem_kib,
            balloon_unused_kib=unused,
        )


def _cumulative(trace: Trace) -> dict[str, FloatArray]:
    return {m: np.concatenate([[0.0], np.cumsum(v)]) for m, v in trace.columns.items()}
