"""Diagnose one VM from the metrics store: gather its, its host's and its neighbours' series
and ask the diagnosis engine (corral.engines.diagnosis) why it is slow or busy; or diagnose
the whole fleet set-based and sum it up in sentences (``fleet_summary``).

Why a service: ``corral metrics diagnose VM`` and ``/api/v1/metrics/diagnose`` must give the
same answer from the same stored buckets. The VM's host is the host its newest sample was
seen on; its neighbours are the VMs whose newest ``cpu_host_pct`` in the window came from that
host.

Why two resolutions: the rules judge the last hour on 5-minute buckets, but read the days
before it only for a neighbour's usual CPU (a median) and a leak's daily means, which hourly
buckets give as well. The history before the hour that holds the judged window is read in
hourly buckets, the rest in 5-minute ones: a week is 168 + at most 24 buckets a series, not
2,016 (one VM and the fleet read the same buckets, so they agree).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

import numpy as np
import numpy.typing as npt

from corral.domain.metrics import EntityKind
from corral.engines.diagnosis import (
    DEFAULT_CONFIG,
    Cause,
    Diagnosis,
    DiagnosisConfig,
    Evidence,
    Finding,
    Series,
    headline,
)
from corral.engines.diagnosis import diagnose as judge
from corral.engines.diagnosis.fleet import FleetGroup, FleetSummary, reword, summarize
from corral.errors import NotFoundError
from corral.inventory.service import Inventory
from corral.metrics.store.base import MetricsStore

VM_METRICS = (
    "cpu_pct",
    "cpu_wait_pct",
    "cpu_steal_pct",
    "mem_used_pct",
    "swap_in_bytes_per_s",
    "swap_out_bytes_per_s",
    "net_rx_bytes_per_s",
    "net_tx_bytes_per_s",
)
HOST_METRICS = ("host_cpu_pct", "host_iowait_pct", "host_mem_used_pct")
NEIGHBOUR_METRIC = "cpu_host_pct"
STEP_S = 300
HISTORY_STEP_S = 3600  # the buckets of the history before the judged hour
#: history read before the judged hour when the caller gives none (the setting
#: ``diagnosis_history_s`` overrides it in the CLI and the API): a week holds every hour of the
#: week once for the neighbours' usual CPU, and the 3 days of daily means a leak needs
HISTORY_S = 7 * 86400
FloatArray = npt.NDArray[np.float64]


def _split(lo: int, at: int, window: float) -> tuple[int, int]:
    """The hour-aligned start of the history and the hour where the 5-minute buckets begin
    (the start of the hour that holds the judged window's first second)."""
    first = int(at - window)
    fine = max(first - first % HISTORY_STEP_S, lo - lo % HISTORY_STEP_S)
    return lo - lo % HISTORY_STEP_S, fine


def _series(
    store: MetricsStore, kind: EntityKind, entity: str, metric: str, lo: int, hi: int, window: float
) -> Series:
    start, fine = _split(lo, hi, window)
    points = [
        *(store.series(kind, entity, metric, start, fine, HISTORY_STEP_S) if fine > start else []),
        *store.series(kind, entity, metric, fine, hi, STEP_S),
    ]
    pairs = [(float(p.ts), float("nan") if p.value is None else p.value) for p in points]
    return Series(tuple(t for t, _ in pairs), tuple(v for _, v in pairs))


def _host_of(store: MetricsStore, vm: str, lo: int, at: int) -> str:
    for metric in ("cpu_pct", NEIGHBOUR_METRIC):
        raw = store.raw(EntityKind.vm, vm, metric, lo, at)
        if raw:
            return raw[-1][1]
    raise NotFoundError(
        f"no stored CPU samples of VM {vm} in that history; check the VM and --history."
    )


def _neighbours(
    store: MetricsStore, vm: str, host: str, lo: int, at: int, window: float
) -> dict[str, Series]:
    latest = store.latest([EntityKind.vm], at - int(window))
    names = sorted(
        {
            s.entity
            for s in latest
            if s.metric == NEIGHBOUR_METRIC and s.host == host and s.entity != vm
        }
    )
    return {n: _series(store, EntityKind.vm, n, NEIGHBOUR_METRIC, lo, at, window) for n in names}


def diagnose(
    store: MetricsStore,
    vm: str,
    at: int,
    history_s: int = HISTORY_S,
    config: DiagnosisConfig = DEFAULT_CONFIG,
) -> Diagnosis:
    """Why VM ``vm`` (its UUID) is slow or busy in the ``config.window`` before ``at``."""
    lo = at - history_s
    host = _host_of(store, vm, lo, at)
    evidence = Evidence(
        vm,
        host,
        float(at),
        {m: _series(store, EntityKind.vm, vm, m, lo, at, config.window) for m in VM_METRICS},
        {m: _series(store, EntityKind.host, host, m, lo, at, config.window) for m in HOST_METRICS},
        _neighbours(store, vm, host, lo, at, config.window),
    )
    return judge(evidence, config)


def _placement(store: MetricsStore, at: int, window: float) -> dict[str, list[str]]:
    """Host -> its VMs (sorted): each VM on the host of its newest CPU sample in the window."""
    newest: dict[str, tuple[int, str]] = {}
    for s in store.latest([EntityKind.vm], at - int(window)):
        wanted = s.metric in ("cpu_pct", NEIGHBOUR_METRIC) and s.ts < at
        if wanted and (s.entity not in newest or s.ts > newest[s.entity][0]):
            newest[s.entity] = (s.ts, s.host)
    hosts: dict[str, list[str]] = {}
    for vm, (_, host) in sorted(newest.items()):
        hosts.setdefault(host, []).append(vm)
    return hosts


def _host_chunks(hosts: dict[str, list[str]], chunk_size: int) -> Iterator[list[str]]:
    """Whole hosts (a VM's neighbours must be read with it) in chunks of about
    ``chunk_size`` VMs; a host larger than a chunk is a chunk of its own."""
    chunk: list[str] = []
    count = 0
    for host in sorted(hosts):
        if chunk and count + len(hosts[host]) > chunk_size:
            yield chunk
            chunk, count = [], 0
        chunk.append(host)
        count += len(hosts[host])
    if chunk:
        yield chunk


def _buckets(lo: int, at: int, window: float) -> tuple[FloatArray, list[tuple[int, int, int]]]:
    """The start of every bucket a diagnosis reads (hourly, then 5-minute) and the reads
    that fill them: (start, end, step)."""
    start, fine = _split(lo, at, window)
    reads = [(start, fine, HISTORY_STEP_S)] if fine > start else []
    reads.append((fine, at, STEP_S))
    times = [np.arange(a, b, step, dtype=np.float64) for a, b, step in reads]
    return np.concatenate(times), reads


def _grid(
    store: MetricsStore,
    kind: EntityKind,
    entities: list[str],
    metrics: tuple[str, ...],
    reads: list[tuple[int, int, int]],
) -> FloatArray:
    """``[metric, entity, bucket]`` of every pair, one set-based query a resolution; NaN: no
    sample."""
    parts = []
    for start, end, step in reads:
        n = -(-(end - start) // step)
        cols = store.series_many(kind, entities, metrics, start, end, step)
        col = (cols.ts - start) // step
        inside = (col >= 0) & (col < n)
        grid = np.full((len(metrics), len(entities), n), np.nan)
        grid[cols.metric[inside], cols.entity[inside], col[inside]] = cols.value[inside]
        parts.append(grid)
    return np.concatenate(parts, axis=2)


def _chunk_diagnoses(
    store: MetricsStore,
    hosts: dict[str, list[str]],
    chunk: list[str],
    at: int,
    history_s: int,
    config: DiagnosisConfig,
) -> Iterator[Diagnosis]:
    times, reads = _buckets(at - history_s, at, config.window)
    vms = [vm for host in chunk for vm in hosts[host]]
    row = {vm: i for i, vm in enumerate(vms)}
    metrics = (*VM_METRICS, NEIGHBOUR_METRIC)
    vm_grid = _grid(store, EntityKind.vm, vms, metrics, reads)
    host_grid = _grid(store, EntityKind.host, chunk, HOST_METRICS, reads)
    share = metrics.index(NEIGHBOUR_METRIC)
    for h, host in enumerate(chunk):
        of_host = {m: Series(times, host_grid[j, h]) for j, m in enumerate(HOST_METRICS)}
        shares = {vm: Series(times, vm_grid[share, row[vm]]) for vm in hosts[host]}
        for vm in hosts[host]:
            evidence = Evidence(
                vm,
                host,
                float(at),
                {m: Series(times, vm_grid[j, row[vm]]) for j, m in enumerate(VM_METRICS)},
                of_host,
                {other: s for other, s in shares.items() if other != vm},
            )
            yield judge(evidence, config)


def diagnose_fleet(
    store: MetricsStore,
    at: int,
    history_s: int = HISTORY_S,
    chunk_size: int = 1000,
    config: DiagnosisConfig = DEFAULT_CONFIG,
) -> Iterator[Diagnosis]:
    """Every VM with a CPU sample in the window before ``at``, diagnosed as ``diagnose`` does,
    read set-based a chunk of whole hosts at a time (the VMs' series and the hosts' series, each
    one query a resolution), so memory is bounded by ``chunk_size`` VMs x metrics x buckets."""
    hosts = _placement(store, at, config.window)
    for chunk in _host_chunks(hosts, chunk_size):
        yield from _chunk_diagnoses(store, hosts, chunk, at, history_s, config)


def fleet_summary(
    store: MetricsStore,
    at: int,
    history_s: int = HISTORY_S,
    chunk_size: int = 1000,
    names: Mapping[str, str] | None = None,
    units: Mapping[str, str] | None = None,
    config: DiagnosisConfig = DEFAULT_CONFIG,
) -> FleetSummary:
    """The fleet's diagnoses grouped by host x cause x onset, ranked, in sentences."""
    return summarize(diagnose_fleet(store, at, history_s, chunk_size, config), names, units)


def vm_labels(inventory: Inventory, uuids: Iterable[str]) -> tuple[dict[str, str], dict[str, str]]:
    """Display names, and the project (the application a VM serves, from its ownership
    metadata) of the VMs a summary names: "cause: the 2 VMs of batch-etl"."""
    from sqlalchemy import select

    from corral.store import models as m

    wanted = sorted({u.lower() for u in uuids})
    names: dict[str, str] = {}
    projects: dict[str, str] = {}
    with inventory.db.session() as s:
        for i in range(0, len(wanted), 500):
            q = select(m.VM.uuid, m.VM.name, m.VM.project).where(m.VM.uuid.in_(wanted[i : i + 500]))
            for uuid, name, project in s.execute(q).all():
                names[uuid] = name
                if project:
                    projects[uuid] = project
    return names, projects


def labelled(summary: FleetSummary, inventory: Inventory) -> FleetSummary:
    """The summary worded with the inventory's names and projects of the VMs it names (the
    members a sentence lists and every culprit: a few dozen, not the fleet)."""
    shown = {v for g in summary.groups for v in (*g.vms[:3], *g.culprits)}
    names, projects = vm_labels(inventory, shown)
    return reword(summary, names, projects)


__all__ = [
    "Cause",
    "Diagnosis",
    "Finding",
    "FleetGroup",
    "FleetSummary",
    "diagnose",
    "diagnose_fleet",
    "fleet_summary",
    "headline",
    "labelled",
    "reword",
    "vm_labels",
]
