"""The HA manager's rounds on a large simulated fleet: one host (or a rack) lost.

    .venv/bin/python benchmarks/bench_ha_manager.py [--hosts 100] [--vms-per-host 40]

A fixed, seeded fleet; the first ``--lost`` hosts crash at t=10 s and the run goes
until every VM is settled. Prints the simulated time from the crash to the last VM
running, the events, and the manager's compute per round (mean and worst), which
must stay far below the 5 s round interval.
"""

from __future__ import annotations

import argparse
import random
import time
from typing import Any

from corral.engines.ha_manager.scenario import Run, scenario_from_mapping


def fleet(hosts: int, per_host: int, seed: int = 7) -> dict[str, Any]:
    rng = random.Random(seed)
    host_list = [
        {"name": f"h{i:03d}", "cores": 32, "cpu_mhz": 2600, "memory_mib": 262144}
        for i in range(hosts)
    ]
    vms = [
        {
            "name": f"vm{h:03d}-{j:02d}",
            "host": f"h{h:03d}",
            "vcpus": rng.choice([1, 2, 4]),
            "memory_mib": rng.choice([2048, 4096, 8192]),
            "priority": rng.choice([0, 0, 1, 5]),
            "protection": rng.choice(["restart", "restart", "replicated", "none"]),
        }
        for h in range(hosts)
        for j in range(per_host)
    ]
    return {"hosts": host_list, "vms": vms}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--hosts", type=int, default=100)
    ap.add_argument("--vms-per-host", type=int, default=40)
    ap.add_argument("--lost", type=int, default=1)
    args = ap.parse_args()
    doc = {
        "duration": 300,
        "fleet": fleet(args.hosts, args.vms_per_host),
        "events": [{"at": 10, "do": "crash", "host": f"h{i:03d}"} for i in range(args.lost)],
    }
    t0 = time.perf_counter()
    scenario = scenario_from_mapping(doc, "bench")
    plan_s = time.perf_counter() - t0
    run = Run(scenario)
    rounds: list[float] = []
    manager = run.manager
    assert manager is not None
    original = manager.tick

    def timed(env: Any) -> Any:
        start = time.perf_counter()
        out = original(env)
        rounds.append(time.perf_counter() - start)
        return out

    manager.tick = timed  # type: ignore[method-assign]
    result = run.play()
    last = max((e.t for e in result.events if e.kind == "vm_recovered"), default=float("nan"))
    rows = [
        ("hosts x VMs", f"{args.hosts} x {args.hosts * args.vms_per_host}"),
        ("hosts lost", str(args.lost)),
        ("plans for every host (s)", f"{plan_s:.2f}"),
        ("crash -> last VM running (simulated s)", f"{last - 10:g}"),
        ("VMs recovered", str(sum(e.kind == "vm_recovered" for e in result.events))),
        ("VMs not recovered", str(sum(e.kind == "vm_not_recovered" for e in result.events))),
        ("events", str(len(result.events))),
        ("rounds", str(len(rounds))),
        ("mean round (ms)", f"{1000 * sum(rounds) / len(rounds):.2f}"),
        ("worst round (ms)", f"{1000 * max(rounds):.2f}"),
        ("violations", str(len(result.violations))),
    ]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")


if __name__ == "__main__":
    main()
