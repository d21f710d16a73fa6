"""Idle: powered on, but low CPU *and* disk *and* network for most of each day.

Defaults: a 5-minute sample is quiet when CPU demand is under 100 MHz (vROps'
reference for an idle VM), disk I/O under 50 KiB/s and network under 10 KiB/s;
a day is idle when at least 90 % of its samples are quiet; the VM is idle when
every covered day of the last 30 is idle and at least 14 days are covered (a
day is covered when half its samples exist). Fewer covered days, or a missing
CPU/disk/network series, is InsufficientData.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from corral.engines.sprawl import stats
from corral.engines.sprawl.detectors.base import DetectionContext, Detector, Param
from corral.engines.sprawl.model import (
    Category,
    Evidence,
    FloatArray,
    MetricBatch,
    Outcome,
    VMRecord,
    epoch_to_datetime,
)


@dataclass(frozen=True)
class IdleStats:
    """Per-VM arrays (one entry per selected row) computed in one vectorised pass."""

    covered_days: stats.IntArray
    idle_days: stats.IntArray
    coverage: stats.Float64Array
    min_quiet_fraction: stats.Float64Array
    mean_cpu: stats.Float64Array
    max_cpu: stats.Float64Array
    mean_disk: stats.Float64Array
    mean_net: stats.Float64Array
    is_idle: stats.BoolArray
    window_days: int


class IdleDetector(Detector):
    name = "idle"
    category = Category.idle
    description = "Powered-on VMs with low CPU and disk and network for most of each day."
    uses_metrics = True
    params = (
        Param("cpu_mhz_max", 100, "CPU demand below this (MHz) is quiet (vROps reference)"),
        Param("cpu_pct_max", 2, "used instead when only CPU % is measured"),
        Param("disk_bytes_s_max", 51200, "disk read+write below this (bytes/s) is quiet"),
        Param("net_bytes_s_max", 10240, "network rx+tx below this (bytes/s) is quiet"),
        Param("quiet_fraction", 0.9, "share of a day's samples that must be quiet", 0, 1),
        Param("idle_day_fraction", 1.0, "share of covered days that must be idle", 0, 1),
        Param("window_days", 30, "days of history looked at", minimum=1),
        Param("min_days", 14, "covered days needed to decide", minimum=1),
        Param("min_day_coverage", 0.5, "share of a day's samples needed to cover it", 0, 1),
    )

    def detect(self, ctx: DetectionContext) -> list[Outcome]:
        candidates = [vm for vm in ctx.vms if vm.powered_on]
        batch = ctx.metrics
        missing = _missing_series(batch)
        if batch is None or missing:
            reason = f"no {missing or 'metrics'} series for the fleet"
            return [self.insufficient(vm, reason) for vm in candidates]
        rows = batch.rows()
        measured = [vm for vm in candidates if vm.uuid in rows]
        out: list[Outcome] = [
            self.insufficient(vm, "no metrics for this VM")
            for vm in candidates
            if vm.uuid not in rows
        ]
        if measured:
            idx = np.array([rows[vm.uuid] for vm in measured], dtype=np.int64)
            result = self.compute(batch, idx)
            out.extend(self._outcomes(measured, result, batch, ctx))
        return out

    def compute(self, batch: MetricBatch, idx: stats.IntArray) -> IdleStats:
        """Idle statistics for the batch rows ``idx`` (the vectorised core).

        NaN compares False, so a missing sample is never quiet; a sample counts as
        valid only when CPU, disk and network were all measured.
        """
        spd = 86400 // batch.step_s
        days = int(self.param("window_days"))
        cpu, cpu_max = _cpu(batch, self)
        assert batch.disk_bytes_s is not None and batch.net_bytes_s is not None
        c, d, n = (
            stats.tail_days(stats.take_rows(a, idx), spd, days)
            for a in (cpu, batch.disk_bytes_s, batch.net_bytes_s)
        )
        total = c + d
        total += n
        per_day_valid = np.count_nonzero(~np.isnan(total), axis=2)
        quiet = c < cpu_max
        quiet &= d < self.param("disk_bytes_s_max")
        quiet &= n < self.param("net_bytes_s_max")
        per_day_quiet = np.count_nonzero(quiet, axis=2)
        result = self._summarise(per_day_valid, per_day_quiet, spd, c.shape[1])
        self._add_evidence(result, c, d, n)
        return result

    def _summarise(
        self, per_day_valid: stats.IntArray, per_day_quiet: stats.IntArray, spd: int, days: int
    ) -> IdleStats:
        quiet_frac = per_day_quiet / np.maximum(per_day_valid, 1)
        covered = per_day_valid >= self.param("min_day_coverage") * spd
        idle_day = covered & (quiet_frac >= self.param("quiet_fraction"))
        n_cov = covered.sum(axis=1)
        n_idle = idle_day.sum(axis=1)
        n_rows = per_day_valid.shape[0]
        nan = np.full(n_rows, np.nan)
        return IdleStats(
            covered_days=n_cov,
            idle_days=n_idle,
            coverage=per_day_valid.sum(axis=1) / float(days * spd),
            min_quiet_fraction=np.where(covered, quiet_frac, np.inf).min(axis=1),
            mean_cpu=nan.copy(),
            max_cpu=nan.copy(),
            mean_disk=nan.copy(),
            mean_net=nan.copy(),
            is_idle=(n_cov >= self.param("min_days"))
            & (n_idle >= self.param("idle_day_fraction") * n_cov - 1e-9),
            window_days=days,
        )

    @staticmethod
    def _add_evidence(s: IdleStats, c: FloatArray, d: FloatArray, n: FloatArray) -> None:
        """Means and peak of the measured samples, for the idle VMs only (evidence)."""
        rows = np.flatnonzero(s.is_idle)
        if not len(rows):
            return
        flat = (len(rows), -1)
        s.mean_cpu[rows] = stats.row_mean(c[rows].reshape(flat))
        s.max_cpu[rows] = stats.row_max(c[rows].reshape(flat))
        s.mean_disk[rows] = stats.row_mean(d[rows].reshape(flat))
        s.mean_net[rows] = stats.row_mean(n[rows].reshape(flat))

    def _outcomes(
        self, vms: list[VMRecord], s: IdleStats, batch: MetricBatch, ctx: DetectionContext
    ) -> list[Outcome]:
        out: list[Outcome] = []
        start = epoch_to_datetime(batch.end - s.window_days * 86400)
        end = epoch_to_datetime(batch.end)
        cpu_unit = "mhz" if batch.cpu_mhz is not None else "pct"
        for i, vm in enumerate(vms):
            if s.covered_days[i] < self.param("min_days"):
                reason = f"{s.covered_days[i]} covered days, {int(self.param('min_days'))} needed"
                out.append(self.insufficient(vm, reason))
                continue
            if not s.is_idle[i]:
                continue
            measures: dict[str, float | int | str] = {
                "covered_days": int(s.covered_days[i]),
                "idle_days": int(s.idle_days[i]),
                "min_quiet_fraction": round(float(s.min_quiet_fraction[i]), 3),
                f"mean_cpu_{cpu_unit}": round(float(s.mean_cpu[i]), 2),
                f"max_cpu_{cpu_unit}": round(float(s.max_cpu[i]), 2),
                "mean_disk_bytes_s": round(float(s.mean_disk[i]), 1),
                "mean_net_bytes_s": round(float(s.mean_net[i]), 1),
            }
            confidence = float(s.coverage[i]) * float(s.idle_days[i]) / float(s.covered_days[i])
            action = "ask the owner; power off (quarantine), then archive and delete"
            evidence = Evidence(measures, window_start=start, window_end=end)
            out.append(self.finding(vm, ctx, evidence, action, confidence=confidence))
        return out


def _missing_series(batch: MetricBatch | None) -> str:
    if batch is None:
        return ""
    if batch.cpu_mhz is None and batch.cpu_pct is None:
        return "CPU"
    if batch.disk_bytes_s is None:
        return "disk I/O"
    if batch.net_bytes_s is None:
        return "network"
    return ""


def _cpu(batch: MetricBatch, det: Detector) -> tuple[FloatArray, float]:
    if batch.cpu_mhz is not None:
        return batch.cpu_mhz, det.param("cpu_mhz_max")
    assert batch.cpu_pct is not None
    return batch.cpu_pct, det.param("cpu_pct_max")
