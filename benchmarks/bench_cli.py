"""CLI start-up on the demo fleet: `corral --help`, `corral vms`, each a fresh process.

    .venv/bin/python benchmarks/bench_cli.py [--runs 15]

The fixed input is the demo fleet (``corral demo --no-serve --history-days 0``: seed 7,
150 VMs on 6 test-driver hosts, some reclaimed and deleted) in a temp home, on SQLite. Every
command then runs ``--runs`` times as a subprocess of this Python, with this environment (so
PYTHONPATH picks the checkout under test), interleaved with ``python -c pass`` so that a
loaded machine slows each alike. Printed per command: median and p90 wall time in seconds,
the median over ``python -c pass`` of the same run ("x pass": the figure to compare across
runs on a noisy machine), the median CPU time (user + system of the child), the number of
modules imported (one ``-X importtime`` run) and which heavy libraries were among them.
Target (issue 15): `corral --help` and `corral vms` under 0.3 s.

Measured 2026-12-03 21:25 UTC on the shared 2-core machine (load average about 2), 11 runs,
the same script on main before (194e166 + merges) and on this branch after:

    before                   median s   p90 s  x pass   cpu s  modules  heavy
    python -c pass              0.013   0.016     1.0   0.013        -  -
    corral --help               0.249   0.291    18.5   0.232      324  -
    corral vms                  1.136   1.228    84.2   1.101      573  pydantic,sqlalchemy
    corral vms -o json          1.004   1.198    74.5   0.983      572  pydantic,sqlalchemy
    corral plan --help          0.566   0.681    42.0   0.603      576  pydantic

    after                    median s   p90 s  x pass   cpu s  modules  heavy
    python -c pass              0.013   0.018     1.0   0.012        -  -
    corral --help               0.187   0.286    14.7   0.185      325  -
    corral vms                  0.229   0.277    18.0   0.228      230  -
    corral vms -o json          0.144   0.204    11.3   0.143      229  -
    corral plan --help          0.324   0.371    25.5   0.419      486  -

`corral vms` reads the database with the driver (corral.inventory.listing) and checks its
options without Pydantic (corral.cli.quickparams); what is left of its time is Python and
Typer/Rich start-up (as `--help`) and Rich laying out the 150-row table (about 0.08 s).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

COMMANDS: dict[str, list[str]] = {
    "corral --help": ["--help"],
    "corral vms": ["vms"],
    "corral vms -o json": ["vms", "-o", "json"],
    "corral plan --help": ["plan", "--help"],
}
HEAVY = ("ortools", "pandas", "sqlalchemy", "alembic", "pydantic")
PASS = "python -c pass"


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
    """A home holding the demo fleet (seed 7), on SQLite."""
    env = {**os.environ, "CORRAL_HOME": str(root / "home")}
    # PYTHONDONTWRITEBYTECODE would compile every module from source at each start: an
    # installed Corral starts from its byte-code, written here by the first runs.
    for name in (
        "CORRAL_DATABASE_URL",
        "CORRAL_METRICS_URL",
        "CORRAL_NODE_DIR",
        "PYTHONDONTWRITEBYTECODE",
    ):
        env.pop(name, None)
    corral(env, "demo", "--no-serve", "--history-days", "0", "--seed", "7", "-o", "json")
    return env


def modules(env: dict[str, str], args: list[str]) -> tuple[int, list[str]]:
    """How many modules the command imports, and which of the heavy ones."""
    lines = [ln for ln in corral(env, *args, importtime=True).splitlines() if "|" in ln]
    names = {ln.rsplit("|", 1)[1].strip() for ln in lines[1:]}  # first line is the header
    return len(names), sorted(h for h in HEAVY if h in names)


def _child_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timings(env: dict[str, str], runs: int) -> dict[str, tuple[list[float], list[float]]]:
    """Wall and CPU seconds of each run of each command, the commands taken in turn."""
    seen: dict[str, tuple[list[float], list[float]]] = {
        label: ([], []) for label in (PASS, *COMMANDS)
    }
    for _ in range(runs):
        for label, (wall, cpu) in seen.items():
            began, cpu_began = time.perf_counter(), _child_cpu()
            if label == PASS:
                subprocess.run([sys.executable, "-c", "pass"], env=env, check=True)
            else:
                corral(env, *COMMANDS[label])
            wall.append(time.perf_counter() - began)
            cpu.append(_child_cpu() - cpu_began)
    return seen


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
        seen = timings(env, runs)
        base = statistics.median(seen[PASS][0])
        print(
            f"{'command':<22} {'median s':>9} {'p90 s':>7} {'x pass':>7} {'cpu s':>7} "
            f"{'modules':>8}  heavy"
        )
        for label, (wall, cpu) in seen.items():
            median = statistics.median(wall)
            count, heavy = (0, []) if label == PASS else modules(env, COMMANDS[label])
            print(
                f"{label:<22} {median:>9.3f} {p90(wall):>7.3f} {median / base:>7.1f} "
                f"{statistics.median(cpu):>7.3f} {count or '-':>8}  {','.join(heavy) or '-'}"
            )


if __name__ == "__main__":
    main()
