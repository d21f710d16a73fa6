"""Benchmark: Corral's anomaly alerts scored with NAB's rules beside NAB's published detectors.

Run:  PYTHONPATH=src .venv/bin/python benchmarks/bench_nab.py [--data DIR] [--profile standard]

Input: the 14 NAB files of the shared data folder's nab-aws/ ($CORRAL_SHARED_DATA or
../shared/data), their label windows and NAB's published per-file scores. Corral's ``alert``
column comes from the detector with its default configuration (the one ``corral metrics
anomalies`` uses, one configuration for every file). The scorer is checked against the numenta
detector's per-row results first, so the table compares like with like.
"""

from __future__ import annotations

import argparse
import os
from collections import defaultdict
from pathlib import Path

from corral.engines.anomaly.detector import detect
from corral.engines.anomaly.nab_data import load_files, published_scores, reference_rows
from corral.engines.anomaly.nab_score import PROFILES, normalized, score_file

ROOT = Path(__file__).resolve().parents[1]
NUMENTA_THRESHOLD = 0.5421876907348634  # NAB config/thresholds.json, standard profile


def default_data() -> Path:
    env = os.environ.get("CORRAL_SHARED_DATA")
    return (Path(env) if env else ROOT.parent / "shared" / "data") / "nab-aws"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=default_data(), help="the nab-aws folder")
    parser.add_argument("--profile", default="standard", choices=sorted(PROFILES))
    args = parser.parse_args()
    profile = PROFILES[args.profile]
    files = load_files(args.data)
    published = [p for p in published_scores(args.data) if p.profile == profile.name]
    windows = sum(len(f.windows) for f in files)

    print(f"{'file':56} {'windows':>7} {'corral':>8} {'det':>5} {'fp':>3} {'numenta':>8}")
    ours = numenta_check = 0.0
    for f in files:
        verdicts = detect(f.values)
        r = score_file(f.times, [v.alert for v in verdicts], f.windows, profile)
        numenta = [s >= NUMENTA_THRESHOLD for s in reference_rows(args.data, f.key)]
        n = score_file(f.times, numenta, f.windows, profile)
        ours += r.score
        numenta_check += n.score
        det = f"{r.detected_windows}/{r.windows}"
        print(f"{f.key:56} {len(f.windows):7} {r.score:8.3f} {det:>5} {r.fp:3} {n.score:8.3f}")
    print(f"{'total (raw)':56} {windows:7} {ours:8.3f} {'':5} {'':3} {numenta_check:8.3f}")

    totals: dict[str, float] = defaultdict(float)
    for p in published:
        totals[p.detector] += p.score
    table = {d: normalized(s, windows, profile) for d, s in totals.items()}
    table["corral"] = normalized(ours, windows, profile)
    table["numenta (our scorer)"] = normalized(numenta_check, windows, profile)
    print(f"\nNAB {profile.name} profile, normalized over these {len(files)} files")
    for name, value in sorted(table.items(), key=lambda kv: -kv[1]):
        print(f"  {name:24} {value:6.1f}")


if __name__ == "__main__":
    main()
