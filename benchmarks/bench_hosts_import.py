"""Registering hosts in bulk: ``corral hosts import`` of 200 and of 10,000 test-driver hosts.

    .venv/bin/python benchmarks/bench_hosts_import.py [--pg-url URL]

Each case writes a fixed fleet (seed 42, 1 VM per host: the import does not open hosts, so
their size does not matter), then times the whole command, ``corral hosts import FILE`` in a
fresh process (start-up included), on SQLite and, given a URL, PostgreSQL. Targets (issue 16):
200 hosts in 2 s, 10,000 hosts in 30 s.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from benchdb import fresh_database
from fleetgen import write_fleet

TARGETS_S = {200: 2.0, 10_000: 30.0}


def timed_import(hosts_csv: Path, home: Path, nodes: Path, url: str | None) -> float:
    env = {**os.environ, "CORRAL_HOME": str(home), "CORRAL_NODE_DIR": str(nodes)}
    env.pop("CORRAL_DATABASE_URL", None)
    if url:
        env["CORRAL_DATABASE_URL"] = url
    t0 = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "corral", "hosts", "import", str(hosts_csv)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"import failed: {done.stderr.strip()}")
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pg-url", default=os.environ.get("CORRAL_TEST_PG_URL"))
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for n in TARGETS_S:
            nodes = root / f"nodes-{n}"
            paths = write_fleet(nodes, n, 1)
            hosts = root / f"hosts-{n}.csv"
            hosts.write_text(
                "name,uri\n" + "".join(f"{p.stem},test://{p}\n" for p in paths), encoding="utf-8"
            )
            rows.append(("SQLite", n, timed_import(hosts, root / f"home-sqlite-{n}", nodes, None)))
            if args.pg_url:
                fresh_database(args.pg_url, True).dispose()
                took = timed_import(hosts, root / f"home-pg-{n}", nodes, args.pg_url)
                rows.append(("PostgreSQL", n, took))
    print(f"\nHosts imported in one command; load average {os.getloadavg()[0]:.1f}")
    print(f"{'database':<12} {'hosts':>7} {'seconds':>8} {'target s':>9} {'met':>4}")
    for name, n, took in rows:
        met = "yes" if took <= TARGETS_S[n] else "no"
        print(f"{name:<12} {n:>7} {took:>8.2f} {TARGETS_S[n]:>9.0f} {met:>4}")


if __name__ == "__main__":
    main()
