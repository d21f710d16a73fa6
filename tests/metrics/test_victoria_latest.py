"""VictoriaMetrics ``latest`` read again with the same store reads only what is new, and
answers exactly what a fresh store reading the whole window answers."""

from __future__ import annotations

import time

from corral.metrics.model import EntityKind, Latest, Sample, SampleBatch
from corral.metrics.store.victoria import LATEST_FULL_EVERY_S, LATEST_MARGIN_S
from tests.metrics.conftest import Flushing

VM, HOST = EntityKind.vm, EntityKind.host
KINDS = [HOST, VM]


def _write(store: Flushing, *samples: Sample) -> None:
    store.write(SampleBatch.from_samples(list(samples)))


def _fresh(url: str, since: int) -> list[Latest]:
    fresh = Flushing(url)
    try:
        return fresh.latest(KINDS, since)
    finally:
        fresh.close()


def _by_series(rows: list[Latest]) -> dict[tuple[str, str], tuple[str, int, float]]:
    return {(x.entity, x.metric): (x.host, x.ts, x.value) for x in rows}


def test_cached_latest_equals_a_full_read(victoria_url: str) -> None:
    now = int(time.time())
    since = now - 900
    cached = Flushing(victoria_url)
    _write(
        cached,
        Sample(VM, "steady", "h1", "cpu_pct", now - 180, 1.0),
        Sample(VM, "stops", "h1", "cpu_pct", now - 180, 2.0),
        Sample(VM, "late", "h1", "cpu_pct", now - 600, 3.0),
        Sample(VM, "moves", "h1", "cpu_pct", now - 180, 4.0),
        Sample(VM, "gone", "h1", "cpu_pct", now - 4000, 5.0),
        Sample(HOST, "h1", "h1", "host_cpu_pct", now - 180, 50.0),
    )
    first = cached.latest(KINDS, since)
    assert first == _fresh(victoria_url, since)
    assert ("gone", "cpu_pct") not in _by_series(first)

    # after the read: new samples, one arriving late (older than the read, inside the
    # margin), a new series, a VM on another host; "stops" gets nothing more
    assert LATEST_MARGIN_S > 120
    _write(
        cached,
        Sample(VM, "steady", "h1", "cpu_pct", now - 60, 11.0),
        Sample(VM, "late", "h1", "cpu_pct", now - 120, 13.0),
        Sample(VM, "moves", "h2", "cpu_pct", now - 60, 14.0),
        Sample(VM, "new", "h3", "mem_pct", now - 60, 16.0),
        Sample(HOST, "h1", "h1", "host_cpu_pct", now - 60, 60.0),
    )
    second = cached.latest(KINDS, since)
    assert second == _fresh(victoria_url, since)
    got = _by_series(second)
    assert got[("steady", "cpu_pct")] == ("h1", now - 60, 11.0)
    assert got[("late", "cpu_pct")] == ("h1", now - 120, 13.0)
    assert got[("moves", "cpu_pct")] == ("h2", now - 60, 14.0)
    assert got[("new", "mem_pct")] == ("h3", now - 60, 16.0)
    assert got[("stops", "cpu_pct")] == ("h1", now - 180, 2.0)
    assert got[("h1", "host_cpu_pct")] == ("h1", now - 60, 60.0)

    # a later since drops what stopped before it; an earlier one reads the whole window again
    later = cached.latest(KINDS, now - 150)
    assert later == _fresh(victoria_url, now - 150)
    assert ("stops", "cpu_pct") not in _by_series(later)
    # another set of kinds is kept beside, and the later since only filtered: "stops" is back
    fresh = Flushing(victoria_url)
    assert cached.latest([VM], since) == fresh.latest([VM], since)
    assert cached.latest(KINDS, since) == second
    fresh.close()
    earlier = cached.latest(KINDS, now - 5000)
    assert earlier == _fresh(victoria_url, now - 5000)
    assert _by_series(earlier)[("gone", "cpu_pct")] == ("h1", now - 4000, 5.0)
    cached.close()


class _Ahead(Flushing):
    """The store with its clock moved forward: the server is real, the time asked of it later."""

    ahead = 0.0

    def _server_now(self) -> float:
        return super()._server_now() + self.ahead


def test_a_sample_later_than_the_margin_waits_for_the_next_full_read(victoria_url: str) -> None:
    now = int(time.time())
    since = now - 7200
    cached = _Ahead(victoria_url)
    _write(cached, Sample(VM, "replayed", "h1", "cpu_pct", now - 3000, 1.0))
    assert _by_series(cached.latest(KINDS, since))[("replayed", "cpu_pct")][1] == now - 3000
    # a collector back from an outage replays a sample from before the margin
    _write(cached, Sample(VM, "replayed", "h2", "cpu_pct", now - LATEST_MARGIN_S - 600, 2.0))
    missed = _by_series(cached.latest(KINDS, since))
    assert missed[("replayed", "cpu_pct")] == ("h1", now - 3000, 1.0)
    cached.ahead = LATEST_FULL_EVERY_S
    fresh = _Ahead(victoria_url)
    fresh.ahead = LATEST_FULL_EVERY_S
    got = cached.latest(KINDS, since)
    assert got == fresh.latest(KINDS, since)
    assert _by_series(got)[("replayed", "cpu_pct")] == ("h2", now - LATEST_MARGIN_S - 600, 2.0)
    fresh.close()
    cached.close()
