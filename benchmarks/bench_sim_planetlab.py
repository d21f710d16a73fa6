"""PlanetLab dynamic consolidation: CloudSim's LR-MMT-1.2 (reproduced) vs Corral's policy.

For each shared PlanetLab day (VM order from published-results/cloudsim-vm-order/), prints:
the physical lower bound on energy (README method), CloudSim 3.0.3's published LR-MMT-1.2,
our reproduction of it, and Corral's policy, with energy as a multiple of the bound, SLAV and
migrations. Targets: corral <= 1.20 x bound, SLAV <= LR-MMT-1.2's, migrations <= half of it.
A second table checks the reproduction of THR-MMT-0.8 as well (``--all-cloudsim`` adds
IQR-MMT-1.5 and MAD-MMT-2.5).

    .venv/bin/python benchmarks/bench_sim_planetlab.py [--small] [--all-cloudsim] [--data DIR]

``--small`` runs the first two days only. Deterministic (no randomness in the input).
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import time
from pathlib import Path

from corral.engines.simulation import make_policy, planetlab_fleet, planetlab_vm_types, simulate
from corral.engines.simulation.model import SimulationResult, Workload
from corral.engines.simulation.planetlab import list_days, load_day

ROOT = Path(__file__).resolve().parents[1]


def data_dir(arg: str | None) -> Path:
    return Path(arg or os.environ.get("CORRAL_SHARED_DATA") or ROOT.parent / "shared" / "data")


def published(data: Path) -> dict[tuple[str, str], dict[str, str]]:
    path = data / "published-results" / "cloudsim-3.0.3-planetlab-baselines.csv"
    with path.open(encoding="utf-8") as fh:
        return {(r["day"], r["policy"]): r for r in csv.DictReader(fh)}


def run(workload: Workload, policy: str) -> SimulationResult:
    return simulate(planetlab_fleet(), planetlab_vm_types(), workload, make_policy(policy))


def load(data: Path, day: str) -> Workload:
    order = data / "published-results" / "cloudsim-vm-order" / f"{day}.txt"
    return load_day(data / "planetlab", day, order)


def pct(a: float, b: float) -> str:
    return f"{(a / b - 1) * 100:+.1f}%"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="first two days only")
    parser.add_argument("--data", help="shared data folder (default ../shared/data)")
    parser.add_argument("--all-cloudsim", action="store_true", help="also IQR-MMT and MAD-MMT")
    args = parser.parse_args()
    data = data_dir(args.data)
    ref = published(data)
    days = list_days(data / "planetlab")[: 2 if args.small else None]
    head = (
        f"{'day':8} {'bound':>6} | {'LR pub':>7} {'LR ours':>7} {'dE':>6} {'migr pub':>8} "
        f"{'ours':>6} {'dM':>6} {'x bnd':>5} {'SLAV':>7} | {'corral':>7} {'x bnd':>5} "
        f"{'x srv':>5} {'SLAV':>7} {'migr':>5} {'/LR':>5} {'SLATAH':>6} {'met':>4}"
    )
    print("energy kWh; SLAV x1e-5; 'x bnd' = energy / physical lower bound; 'x srv' = energy /")
    print("bound on the demand actually served (CloudSim retires VMs that request 0 MIPS)")
    print(head)
    print("-" * len(head))
    rows: list[tuple[str, SimulationResult, SimulationResult]] = []
    began = time.perf_counter()
    for day in days:
        workload = load(data, day)
        lr = run(workload, "lr-mmt-1.2")
        corral = run(workload, "corral")
        rows.append((day, lr, corral))
        pub = ref[(day, "LR-MMT-1.2")]
        e_pub, m_pub = float(pub["energy_kwh"]), int(pub["vm_migrations"])
        bound = lr.energy_lower_bound_kwh
        met = (
            corral.energy_kwh <= 1.2 * bound
            and corral.slav <= lr.slav
            and corral.migrations <= lr.migrations / 2
        )
        cells = [
            f"{day:8} {bound:6.1f} |",
            f"{e_pub:7.2f} {lr.energy_kwh:7.2f} {pct(lr.energy_kwh, e_pub):>6}",
            f"{m_pub:8d} {lr.migrations:6d} {pct(lr.migrations, m_pub):>6}",
            f"{lr.energy_kwh / bound:5.2f} {lr.slav * 1e5:7.3f} |",
            f"{corral.energy_kwh:7.2f} {corral.energy_kwh / bound:5.2f}",
            f"{corral.energy_kwh / corral.served_lower_bound_kwh:5.2f}",
            f"{corral.slav * 1e5:7.3f} {corral.migrations:5d}",
            f"{corral.migrations / lr.migrations:5.2f} {corral.slatah_pct:6.2f}",
            f"{'yes' if met else 'NO':>4}",
        ]
        print(" ".join(cells))
        sys.stdout.flush()
    print(f"({time.perf_counter() - began:.0f} s)")
    print()
    others = ["THR-MMT-0.8"] + (["IQR-MMT-1.5", "MAD-MMT-2.5"] if args.all_cloudsim else [])
    print("CloudSim reproduction:", ", ".join(others))
    head2 = (
        f"{'day':8} {'policy':12} {'E pub':>7} {'E ours':>7} {'dE':>6} {'migr pub':>8} "
        f"{'ours':>6} {'dM':>6} {'SLATAH pub/ours':>16} {'SLAV pub/ours':>14}"
    )
    print(head2)
    print("-" * len(head2))
    for day, _, _ in rows:
        workload = load(data, day)
        for label in others:
            reproduction_row(workload, label, ref[(day, label)])
    return 0


def reproduction_row(workload: Workload, label: str, pub: dict[str, str]) -> None:
    """One line: published vs reproduced energy, migrations, SLATAH, SLAV."""
    ours = run(workload, label.lower())
    e_pub, m_pub = float(pub["energy_kwh"]), int(pub["vm_migrations"])
    cells = [
        f"{workload.day:8} {label:12} {e_pub:7.2f} {ours.energy_kwh:7.2f}",
        f"{pct(ours.energy_kwh, e_pub):>6} {m_pub:8d} {ours.migrations:6d}",
        f"{pct(ours.migrations, m_pub):>6}",
        f"{float(pub['slatah_pct']):7.2f}/{ours.slatah_pct:<7.2f} ",
        f"{float(pub['slav_x1e-5']):6.2f}/{ours.slav * 1e5:<6.2f}",
    ]
    print(" ".join(cells))
    sys.stdout.flush()


if __name__ == "__main__":
    raise SystemExit(main())
