"""CLI start-up: `corral --help`, `corral vms` and `corral plan --help`, each a fresh process.

    .venv/bin/python benchmarks/bench_cli.py [--runs 15]

A temp home holds two test-driver hosts (the node files of tests/fixtures/nodes),
synced once; every command then runs ``--runs`` times as a subprocess of this
Python, with this environment (so PYTHONPATH picks the checkout under test).
Printed per command: median and p90 wall time in seconds, the median CPU time
(user + system of the child: steadier than wall time on a shared, loaded machine),
the number of modules imported (one ``-X importtime`` run) and whether OR-Tools or
pandas were among them. Target: `corral --help` and `corral vms` under 0.3 s.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

NODES = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "nodes"
COMMANDS: dict[str, list[str]] = {
    "corral --help": ["--help"],
    "corral vms": ["vms"],
    "corral plan --help": ["plan", "--help"],
}
HEAVY = ("ortools", "pandas")


def corral(env: dict[str, str], *args: str, importtime: bool = False) -> str:
    """Run ``corral ARGS`` and return its stderr; fail loudly if the command fails."""
    flags = ["-X", "importtime"] if importtime else []
    done = subprocess.run(
        [sys.executable, *flags, "-m", "corral", *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"corral {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stderr


def build_home(root: Path) -> dict[str, str]:
    nodes = root / "nodes"
    shutil.copytree(NODES, nodes)
    env = {**os.environ, "CORRAL_HOME": str(root / "home"), "CORRAL_NODE_DIR": str(nodes)}
    env.pop("CORRAL_DATABASE_URL", None)
    for host in ("host-a", "host-b"):
        corral(env, "hosts", "add", host, f"test://{nodes / f'{host}.xml'}")
    corral(env, "sync")
    return env


def modules(env: dict[str, str], args: list[str]) -> tuple[int, list[str]]:
    """How many modules the command imports, and which of the heavy ones."""
    lines = [ln for ln in corral(env, *args, importtime=True).splitlines() if "|" in ln]
    names = {ln.rsplit("|", 1)[1].strip() for ln in lines[1:]}  # first line is the header
    return len(names), sorted(h for h in HEAVY if h in names)


def _child_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timings(env: dict[str, str], args: list[str], runs: int) -> tuple[list[float], list[float]]:
    """Wall and CPU seconds of each run."""
    wall, cpu = [], []
    for _ in range(runs):
        began, cpu_began = time.perf_counter(), _child_cpu()
        corral(env, *args)
        wall.append(time.perf_counter() - began)
        cpu.append(_child_cpu() - cpu_began)
    return wall, cpu


def p90(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    runs = parser.parse_args().runs
    with tempfile.TemporaryDirectory(prefix="corral-bench-cli-") as tmp:
        env = build_home(Path(tmp))
        corral(env, "vms")  # warm the byte-code cache once
        print(f"{'command':<22} {'median s':>9} {'p90 s':>7} {'cpu s':>7} {'modules':>8}  heavy")
        for label, args in COMMANDS.items():
            wall, cpu = timings(env, args, runs)
            count, heavy = modules(env, args)
            median, heavy_list = statistics.median(wall), ",".join(heavy) or "-"
            print(
                f"{label:<22} {median:>9.3f} {p90(wall):>7.3f} {statistics.median(cpu):>7.3f} "
                f"{count:>8}  {heavy_list}"
            )


if __name__ == "__main__":
    main()
