"""Diagnose one VM from the metrics store: gather its, its host's and its neighbours' series
and ask the diagnosis engine (corral.engines.diagnosis) why it is slow or busy.

Why a service: ``corral metrics diagnose VM`` and ``/api/v1/metrics/diagnose`` must give the
same answer from the same stored buckets. The VM's host is the host its newest sample was
seen on; its neighbours are the VMs whose newest ``cpu_host_pct`` in the window came from that
host.
"""

from __future__ import annotations

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
from corral.errors import NotFoundError
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


def _series(
    store: MetricsStore, kind: EntityKind, entity: str, metric: str, lo: int, hi: int
) -> Series:
    points = store.series(kind, entity, metric, lo - lo % STEP_S, hi, STEP_S)
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
    return {n: _series(store, EntityKind.vm, n, NEIGHBOUR_METRIC, lo, at) for n in names}


def diagnose(
    store: MetricsStore,
    vm: str,
    at: int,
    history_s: int = 7 * 86400,
    config: DiagnosisConfig = DEFAULT_CONFIG,
) -> Diagnosis:
    """Why VM ``vm`` (its UUID) is slow or busy in the ``config.window`` before ``at``."""
    lo = at - history_s
    host = _host_of(store, vm, lo, at)
    evidence = Evidence(
        vm,
        host,
        float(at),
        {m: _series(store, EntityKind.vm, vm, m, lo, at) for m in VM_METRICS},
        {m: _series(store, EntityKind.host, host, m, lo, at) for m in HOST_METRICS},
        _neighbours(store, vm, host, lo, at, config.window),
    )
    return judge(evidence, config)


__all__ = ["Cause", "Diagnosis", "Finding", "diagnose", "headline"]
