"""Benchmark: detect sprawl and right-size 100,000 VMs x 30 days of 5-minute history.

Run:  .venv/bin/python benchmarks/bench_sprawl.py [--small] [--vms N] [--chunk N] [--workers N]

The fleet is the seeded scenario generator (8 % powered off, 30 % of the rest
idle, office-hours load on the others, 1 % missing samples). Metrics are made and
analysed chunk by chunk so memory stays bounded (one 100,000 x 8,640 float32
series alone is 3.5 GB); chunks run on ``--workers`` threads (numpy releases the
GIL in its loops). Each chunk has its own seed, so results do not depend on the
number of workers. Per phase the table shows wall seconds and CPU seconds summed
over workers: on a machine shared with other jobs the CPU column is the fair one.
"""

from __future__ import annotations

import argparse
import os
import resource
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import numpy as np

from corral.engines.costing import CostModel, load_cost_model, price_fleet, rate_card
from corral.engines.sprawl import (
    DetectionContext,
    Detector,
    Finding,
    RightSizing,
    build_detectors,
    dedupe,
    right_size,
)
from corral.engines.sprawl.scenario import SCENARIO_START, ScenarioAssumptions, _metrics, _vm

SEED = 20260101
GENERATE = "generate metrics (not analysis)"
Timings = dict[str, list[float]]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--small", action="store_true", help="2,000 VMs instead of 100,000")
    parser.add_argument("--vms", type=int, default=None)
    parser.add_argument("--chunk", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    n_vms = args.vms or (2_000 if args.small else 100_000)
    started = time.perf_counter()
    timings, found = run(n_vms, args.chunk, args.workers)
    _print(n_vms, args.workers, timings, found, time.perf_counter() - started)


def run(n_vms: int, chunk: int, workers: int) -> tuple[Timings, Counter[str]]:
    model = load_cost_model()
    detectors = build_detectors()
    starts = list(range(0, n_vms, chunk))
    timings: Timings = defaultdict(lambda: [0.0, 0.0])
    found: Counter[str] = Counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        jobs = [
            pool.submit(_chunk, k, lo, min(n_vms, lo + chunk), model, detectors)
            for k, lo in enumerate(starts)
        ]
        for job in jobs:
            t, f = job.result()
            for phase, (wall, cpu) in t.items():
                timings[phase][0] += wall
                timings[phase][1] += cpu
            found.update(f)
    return timings, found


def _chunk(
    k: int, lo: int, hi: int, model: CostModel, detectors: list[Detector]
) -> tuple[dict[str, tuple[float, float]], Counter[str]]:
    a = ScenarioAssumptions()
    rng = np.random.default_rng([SEED, k])
    now = SCENARIO_START + timedelta(days=a.days)
    clock = _Clock()
    vms = [_vm(i, rng, a, now, f"host-{i // a.vms_per_host:05d}") for i in range(lo, hi)]
    batch = _metrics(tuple(vms), rng, a)
    clock.lap(GENERATE)
    costs = price_fleet(vms, [], model)
    clock.lap("price VMs")
    ctx = DetectionContext(vms, now, costs, model, metrics=batch)
    outcomes = []
    for d in detectors:
        outcomes.extend(d.detect(ctx))
        clock.lap(f"detector {d.name}")
    kept = dedupe(o for o in outcomes if isinstance(o, Finding))
    clock.lap("dedupe")
    sized = right_size(vms, batch, rate_card(model))
    clock.lap("right-size CPU+memory (p95)")
    found = Counter(f.category.value for f in kept)
    found["oversized"] = sum(1 for r in sized if isinstance(r, RightSizing) and r.oversized)
    return clock.laps, found


class _Clock:
    def __init__(self) -> None:
        self.laps: dict[str, tuple[float, float]] = {}
        self._wall, self._cpu = time.perf_counter(), time.thread_time()

    def lap(self, name: str) -> None:
        wall, cpu = time.perf_counter(), time.thread_time()
        self.laps[name] = (wall - self._wall, cpu - self._cpu)
        self._wall, self._cpu = wall, cpu


def _print(n_vms: int, workers: int, timings: Timings, found: Counter[str], elapsed: float) -> None:
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    analysis = [sum(v[i] for k, v in timings.items() if k != GENERATE) for i in (0, 1)]
    print(f"bench_sprawl: {n_vms:,} VMs x 30 days x 288 samples/day (5 min), {workers} worker(s)")
    cpus, load = len(os.sched_getaffinity(0)), os.getloadavg()[0]
    print(f"cpus available: {cpus}, load average {load:.1f}, numpy {np.__version__}")
    print(f"{'phase':<34}{'wall s':>10}{'cpu s':>10}")
    print("-" * 54)
    for k, (wall, cpu) in timings.items():
        print(f"{k:<34}{wall:>10.2f}{cpu:>10.2f}")
    print("-" * 54)
    print(f"{'analysis (detect + right-size)':<34}{analysis[0]:>10.2f}{analysis[1]:>10.2f}")
    per = [x / workers for x in analysis]
    print(f"{'  per worker (= elapsed if alone)':<34}{per[0]:>10.2f}{per[1]:>10.2f}")
    print(f"whole run elapsed {elapsed:.1f} s (generation included); peak RSS {rss_mb:,.0f} MB")
    print("target: analysis < 60 s for 100,000 VMs on 2 cores")
    print("findings (each VM once): " + ", ".join(f"{k}={v:,}" for k, v in sorted(found.items())))


if __name__ == "__main__":
    main()
