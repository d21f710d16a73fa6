"""Study: can choosing or combining forecasts per VM reach bench_forecast's targets?

Run:  PYTHONPATH=src .venv/bin/python benchmarks/forecast_study.py [--data DIR] [--workers 2]
(about 5 minutes of CPU; no Holt-Winters: its numbers are bench_forecast's)

Input (fixed): the shared Bitbrains "Rnd" traces, as in bench_forecast.py.

- dev: VMs 101-500, July only (never in bench_forecast's table); origins on days 16, 20 and 23
  after the file's first hour, history up to a day before the origin (the test's gap), truth
  the 168 hours from the origin. The rules below were ranked here.
- test: bench_forecast's cases (VMs 1-100, July -> August, August -> September).

Every rule sees the history only. A pool of point forecasts (this engine's profile, seasonal
naive 24/168 h, median profiles of the hour of day over 3/7/14 days, of the hour of week over
2-3 weeks, flat medians of 1/3/7/28 days, a Theta-like SES level on a robust daily profile,
and medians of several) is scored at rolling origins a week apart inside the history; a rule
takes the validation-best, the median of the 3 or 5 best, or is a fixed median. Printed
per set: mean and median MASE of each rule (the scale of bench_forecast), the best of the pool
per VM knowing the truth, and how well a VM's validation week ranks the methods of its truth
week (rank correlation; share of VMs whose validation winner is among the truth's best 3).
Results and what they mean: bench_forecast.py's docstring.
"""

from __future__ import annotations

import argparse
import math
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from bench_forecast import HORIZON, HOUR, PAIRS, bucket_means, default_data, read_cpu

DAY = 24
WEEK = 168
SINGLE = ("corral", "n24", "n168", "p3", "p7", "p14", "p14s", "w2", "w3", "f1", "f3", "f7")
SINGLE += ("f28", "theta")
COMBOS = {
    "med(corral,w3,theta)": ("corral", "w3", "theta"),
    "med(corral,n24,n168,w3,theta)": ("corral", "n24", "n168", "w3", "theta"),
    "med(p7,p14,w2,w3,f3,f7)": ("p7", "p14", "w2", "w3", "f3", "f7"),
}
POOL = ("corral", "p7", "p14s", "f3", "f7", "n168", "n24", "p3", *COMBOS)


def _filled(y: np.ndarray) -> np.ndarray:
    y = y.copy()
    gaps = ~np.isfinite(y)
    if gaps.any() and (~gaps).any():
        y[gaps] = np.interp(np.flatnonzero(gaps), np.flatnonzero(~gaps), y[~gaps])
    return y


def _profile(y: np.ndarray, ahead: int, period: int, window: int, shrink: float) -> np.ndarray:
    n = len(y)
    recent = y[max(0, n - window) :]
    overall = float(np.nanmedian(recent))
    phase = np.arange(n - len(recent), n) % period
    shape = np.full(period, overall)
    for p in range(period):
        same = recent[(phase == p) & np.isfinite(recent)]
        if len(same):
            shape[p] = float(np.median(same))
    return (1 - shrink) * shape[np.arange(n, n + ahead) % period] + shrink * overall


def _theta(y: np.ndarray, ahead: int) -> np.ndarray:
    """An SES level (alpha with the least one-step absolute error) on the last 14 days minus
    a robust daily profile, plus the profile."""
    z = _filled(y)[-14 * DAY :]
    n, offset = len(z), len(y) - len(z)
    phase = np.arange(offset, offset + n) % DAY
    shape = np.array([np.median(z[phase == p]) for p in range(DAY)]) - np.median(z)
    flat = z - shape[phase]
    best = (math.inf, float(flat[0]))
    for alpha in (0.02, 0.05, 0.1, 0.2, 0.4):
        level, err = float(flat[0]), 0.0
        for v in flat[1:]:
            err += abs(v - level)
            level += alpha * (v - level)
        best = min(best, (err, level))
    return best[1] + shape[np.arange(len(y), len(y) + ahead) % DAY]


def _naive(y: np.ndarray, ahead: int, period: int) -> np.ndarray:
    z, n = _filled(y), len(y)
    return z[n - period + (np.arange(ahead) % period)]


def pool(y: np.ndarray, ahead: int) -> dict[str, np.ndarray]:
    """Every forecast of the ``ahead`` hours after ``y`` (which ends at an observed hour)."""
    got = {
        "corral": _profile(y, ahead, DAY, WEEK, 0.3),
        "n24": _naive(y, ahead, DAY),
        "n168": _naive(y, ahead, WEEK),
        "p3": _profile(y, ahead, DAY, 3 * DAY, 0.0),
        "p7": _profile(y, ahead, DAY, WEEK, 0.0),
        "p14": _profile(y, ahead, DAY, 2 * WEEK, 0.0),
        "p14s": _profile(y, ahead, DAY, 2 * WEEK, 0.3),
        "w2": _profile(y, ahead, WEEK, 2 * WEEK, 0.0),
        "w3": _profile(y, ahead, WEEK, 3 * WEEK, 0.0),
        "theta": _theta(y, ahead),
    }
    for days in (1, 3, 7, 28):
        got[f"f{days}"] = np.full(ahead, float(np.nanmedian(y[-days * DAY :])))
    for name, parts in COMBOS.items():
        got[name] = np.median(np.vstack([got[p] for p in parts]), axis=0)
    return {k: v[-HORIZON:] for k, v in got.items()}


def _trimmed(hist: np.ndarray) -> tuple[np.ndarray, int]:
    observed = int(np.flatnonzero(np.isfinite(hist))[-1]) + 1
    return hist[:observed], len(hist) - observed


def study(hist: np.ndarray, truth: np.ndarray, origins: int = 3) -> dict[str, object] | None:
    """MASE of every method and rule on one case, and the validation and truth ranks."""
    if np.isfinite(hist).sum() < 14 * DAY or np.isfinite(truth).sum() < 150:
        return None
    scale = float(np.nanmean(np.abs(hist[DAY:] - hist[:-DAY])))
    if not scale > 0:
        return None
    y, lead = _trimmed(hist)
    ok = np.isfinite(truth)
    test = pool(y, lead + HORIZON)
    mase = {k: float(np.mean(np.abs(f[ok] - truth[ok]))) / scale for k, f in test.items()}
    score = dict.fromkeys(POOL, 0.0)
    for k in range(1, origins + 1):
        cut = len(y) - k * WEEK
        seen, later = y[: cut - lead], y[cut : cut + WEEK]
        if np.isfinite(seen).sum() < 7 * DAY or not np.isfinite(later).any():
            break
        seen, gap = _trimmed(seen)
        guess = pool(seen, gap + lead + HORIZON)
        for m in POOL:
            score[m] += float(np.nanmean(np.abs(guess[m] - later)))
    ranked = sorted(POOL, key=lambda m: score[m])
    for top in (1, 3, 5):
        f = np.median(np.vstack([test[m] for m in ranked[:top]]), axis=0)
        mase[f"best {top} by validation"] = float(np.mean(np.abs(f[ok] - truth[ok]))) / scale
    truth_rank = np.argsort(np.argsort([mase[m] for m in POOL]))
    valid_rank = np.argsort(np.argsort([score[m] for m in POOL]))
    return {
        "mase": mase,
        "oracle": min(mase[m] for m in POOL),
        "rho": float(np.corrcoef(valid_rank, truth_rank)[0, 1]),
        "hit": bool(truth_rank[POOL.index(ranked[0])] < 3),
        "scale": scale,
    }


def dev_cases(args: tuple[Path, int]) -> list[tuple[str, dict[str, object]]]:
    data, vm = args
    t, v = read_cpu(data / "rnd" / "2013-7" / f"{vm}.csv.gz")
    if len(t) < 100:
        return []
    first = math.ceil(t[0] / HOUR) * HOUR
    out = []
    for day in (16, 20, 23):
        start = first + day * 86400
        keep = t < start - DAY * HOUR
        truth = bucket_means(t, v, start + HORIZON * HOUR, HOUR)[-HORIZON:]
        hist = bucket_means(t[keep], v[keep], start, HOUR)
        got = study(hist, truth) if len(hist) else None
        if got is not None:
            out.append((f"dev day {day}", got))
    return out


def month_case(args: tuple[Path, str, str, int]) -> list[tuple[str, dict[str, object]]]:
    data, history_month, truth_month, vm = args
    t, v = read_cpu(data / "rnd" / history_month / f"{vm}.csv.gz")
    t_next, v_next = read_cpu(data / "rnd" / truth_month / f"{vm}.csv.gz")
    start = math.ceil(t_next[0] / HOUR) * HOUR
    truth = bucket_means(t_next, v_next, start + HORIZON * HOUR, HOUR)[-HORIZON:]
    got = study(bucket_means(t, v, start, HOUR), truth)
    return [] if got is None else [(f"test {history_month} -> {truth_month}", got)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=default_data(), help="bitbrains-rnd folder")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    with ProcessPoolExecutor(args.workers) as workers:
        dev = [(args.data, vm) for vm in range(101, 501)]
        rows = [r for rs in workers.map(dev_cases, dev, chunksize=8) for r in rs]
        jobs = [(args.data, h, t, vm) for h, t in PAIRS for vm in range(1, 101)]
        rows += [r for rs in workers.map(month_case, jobs, chunksize=8) for r in rs]
    for name in dict.fromkeys(n for n, _ in rows):
        got = [r for n, r in rows if n == name]
        mase = [r["mase"] for r in got]
        print(f"\n{name}: {len(got)} cases; mean / median MASE")
        rules = [*SINGLE, *COMBOS, *(f"best {k} by validation" for k in (1, 3, 5))]
        for rule in sorted(rules, key=lambda k: np.mean([m[k] for m in mase])):  # type: ignore[index]
            values = [m[rule] for m in mase]  # type: ignore[index]
            print(f"  {rule:32} {np.mean(values):8.3f} {np.median(values):7.3f}")
        print(
            f"  {'best of the pool, per VM (oracle)':32} {np.mean([r['oracle'] for r in got]):8.3f}"
        )
        rho = np.mean([r["rho"] for r in got])
        hit = np.mean([r["hit"] for r in got])
        print(
            f"  validation vs truth ranks: correlation {rho:.2f}; winner in truth's top 3 {hit:.0%}"
            f" (a random pick: {3 / len(POOL):.0%})"
        )
        corral = np.array([m["corral"] for m in mase])  # type: ignore[index]
        worst = np.argsort(-corral)[:10]
        scales = np.array([r["scale"] for r in got])
        print(
            f"  the 10 worst VMs (engine) carry {corral[worst].sum() / corral.sum():.0%} of the "
            f"summed MASE; their median scale {np.median(scales[worst]):.1f}, "
            f"all VMs' {np.median(scales):.1f}"
        )


if __name__ == "__main__":
    main()
