"""Poll every host concurrently, turn counters into samples, hand them to a store.

Each host is read in its own daemon thread (libvirt releases the GIL while it
waits; see corral.hypervisor.deadline). A cycle waits at most ``timeout_s`` for
each host; a host that has not answered by then is recorded as an error and
gives no samples (a gap), and while its read is still hanging it is skipped in
later cycles instead of piling up threads. So one slow or dead host never
delays the others, and never keeps the process from exiting.

Next to the samples, each cycle records Corral's own health per host
(kind ``collector``): ``collect_up``, ``collect_lag_seconds`` and
``collect_errors_total``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from corral.errors import CorralError
from corral.hypervisor import deadline
from corral.metrics.clock import Clock, SystemClock
from corral.metrics.model import EntityKind, HostSample, Sample, SampleBatch
from corral.metrics.ports import StatsSource
from corral.metrics.rates import RateTracker

SampleSink = Callable[[SampleBatch], object]


@dataclass
class CycleReport:
    """What one cycle did: samples per host and the hosts that failed, with why."""

    started: float
    samples: int = 0
    per_host: dict[str, int] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)


class Collector:
    """Reads all hosts of ``source`` every ``interval_s`` seconds and writes to ``sink``."""

    def __init__(
        self,
        source: StatsSource,
        sink: SampleSink,
        *,
        interval_s: float = 60.0,
        timeout_s: float | None = None,
        clock: Clock | None = None,
        max_workers: int = 32,
    ) -> None:
        self.source = source
        self.sink = sink
        self.interval_s = interval_s
        self.timeout_s = timeout_s if timeout_s is not None else interval_s * 0.8
        self.clock = clock or SystemClock()
        self.tracker = RateTracker(max_gap_s=max(3.0 * interval_s, 1.0))
        self.error_counts: dict[str, int] = {}
        self.max_workers = max_workers
        self._scope = deadline.scope("stats")

    def collect_once(self) -> CycleReport:
        """One cycle over every host; returns what was written and what failed."""
        report = CycleReport(started=self.clock.now())
        hosts = {f"{self._scope}{h}": h for h in self.source.hosts()}
        tasks = {key: self._reader(host) for key, host in hosts.items()}
        outcomes = deadline.run_all(tasks, self.timeout_s, max_parallel=self.max_workers)
        samples: list[Sample] = []
        for key, host in hosts.items():
            samples.extend(self._harvest(host, outcomes[key], report))
        for host in report.errors:
            samples.extend(self._health(host, int(report.started), up=False, lag=None))
        if samples:
            try:
                self.sink(SampleBatch.from_samples(samples))
            except CorralError as exc:  # e.g. the store stayed busy: a gap, not the end
                report.errors["store"] = exc.message
                return report
        report.samples = len(samples)
        return report

    def _reader(self, host: str) -> Callable[[], HostSample]:
        return lambda: self.source.read(host)

    def _harvest(
        self, host: str, outcome: deadline.Outcome[HostSample], report: CycleReport
    ) -> list[Sample]:
        if outcome.status is deadline.Status.BUSY:
            self._fail(host, "the previous read has not returned yet", report)
            return []
        if outcome.status is deadline.Status.LATE:
            self._fail(host, f"no answer within {self.timeout_s:g} s", report)
            return []
        exc = outcome.error
        if exc is not None:
            msg = exc.message if isinstance(exc, CorralError) else f"{type(exc).__name__}: {exc}"
            self._fail(host, msg, report)
            return []
        reading = outcome.value
        assert reading is not None
        out = self.tracker.update(reading)
        report.per_host[host] = len(out)
        lag = max(0.0, self.clock.now() - report.started)
        out.extend(self._health(host, int(reading.ts), up=True, lag=lag))
        return out

    def _fail(self, host: str, why: str, report: CycleReport) -> None:
        self.error_counts[host] = self.error_counts.get(host, 0) + 1
        report.errors[host] = why

    def _health(self, host: str, ts: int, *, up: bool, lag: float | None) -> list[Sample]:
        c = EntityKind.collector
        out = [
            Sample(c, host, host, "collect_up", ts, 1.0 if up else 0.0),
            Sample(
                c, host, host, "collect_errors_total", ts, float(self.error_counts.get(host, 0))
            ),
        ]
        if lag is not None:
            out.append(Sample(c, host, host, "collect_lag_seconds", ts, lag))
        return out

    def run(self, stop: threading.Event, cycles: int | None = None) -> list[CycleReport]:
        """Collect every ``interval_s`` until ``stop`` is set or ``cycles`` are done."""
        reports: list[CycleReport] = []
        while not stop.is_set() and (cycles is None or len(reports) < cycles):
            start = self.clock.now()
            reports.append(self.collect_once())
            if cycles is not None and len(reports) >= cycles:
                break
            self.clock.sleep(self.interval_s - (self.clock.now() - start))
        return reports

    def close(self) -> None:
        """Nothing to stop: a read still hanging ends with its host (its thread is a daemon)."""
