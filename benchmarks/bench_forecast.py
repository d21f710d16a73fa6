"""Benchmark: Corral's single-series forecast against seasonal naive and Holt-Winters on Bitbrains.

Run:  PYTHONPATH=src .venv/bin/python benchmarks/bench_forecast.py [--data DIR] [--workers 2]

Input (fixed): the shared Bitbrains "Rnd" traces ($CORRAL_SHARED_DATA/bitbrains-rnd or
../shared/data), CPU usage [MHz] of VMs 1-100. For each VM and each pair (July -> August,
August -> September): history = every 5-minute sample of the first month's file; truth = the
hourly means of the first 168 whole hours of the next month's file. VMs with under 14 days of
hourly history or under 150 hours of truth are left out. Rows with 0 CPU capacity carry no
measurement and are skipped.

Corral's forecast is the engine ``corral metrics forecast`` runs (raw samples in, ``--step 1h``
from the first whole hour, default configuration). The baselines work on the hourly history
(gaps filled linearly): seasonal naive 24 h and 168 h, and statsmodels' Holt-Winters
(``ExponentialSmoothing``: additive damped trend, additive 24-hour season). MASE = MAE over the
truth hours / in-sample MAE of the 24-hour seasonal naive forecast on the hourly history.
Coverage = share of truth hours inside Corral's 80 % band.

Two reference rows are not forecasts: they look at the truth week. "oracle flat" forecasts the
truth's own median for every hour; "oracle shift" moves Corral's forecast by the median of its
errors (the best level shift in absolute error). They show how much of the error is a change of
level from one month to the next that no forecast made from the history can know. The issue's
targets are checked at the end of each month's table, followed by the ``--top`` VMs with the
worst MASE: the median of their history's last week beside the truth week's median and mean.

What limits the mean (measured 2026-12-04, same cases): the mean is carried by a few VMs whose
truth week leaves the history's level (VM 4 in August: 28.5 MHz all of late July, 6.5 in
August; VM 33 in September: 1,198 -> 211) or is a few huge spikes (VM 94: median 229, mean
947), scaled by a tiny in-sample error, so one VM adds up to 0.1 to the mean of 95. The five
worst carry 27 % (July) and 23 % (August) of the summed MASE. Tried and rejected, without
looking at the truth: profiles over 3, 4, 5, 14 and 28 days, a recent level (last 1-3 days)
under a 7- or 14-day shape, the median of the same hour over the last 2-3 weeks, a flat
recent median, the per-VM choice among those by a holdout on the history's last week (worse:
1.25-1.29 / 1.33-1.43, the last week's winner is not next month's), and means or medians of
several (at best 1.203-1.205 / 1.23-1.25). Even looking at the truth, the best of 20 such
forecasts per VM gives 1.056 / 1.070 and the best level shift of Corral's forecast 0.892 /
1.054, against targets of 1.074 / 1.069: the August target is out of reach of any level and
daily shape learnt from the history.

Second attempt (2026-12-04, benchmarks/forecast_study.py; designed without the test weeks):
rules were ranked on VMs 101-500 (July only, never in the table above; origins on days 16, 20
and 23 with the test's one-day gap; 648 cases). Pool: this engine, seasonal naive 24/168 h,
median profiles of the hour of day over 3, 7 and 14 days, of the hour of week over 2-3 weeks,
flat medians of the last 1, 3, 7 and 28 days, a Theta-like forecast (SES level with the
MAE-best alpha on a series less its robust daily profile), and medians of 3-6 of them. Per
VM: the method with the least error at up to 3 rolling origins a week apart inside the
history, or the median of the 3 or 5 best. On the dev set the per-VM choice gained little over
a fixed median of three (this engine, the 3-week hour-of-week median, Theta): 2.03 / 11.67
against this engine's 2.21 / 11.87 on days 20 / 23 (mean MASE; one dev VM alone scores 2,820
on day 23). On the test months the five rules best on the dev set give 1.18-1.21 / 1.26-1.32
against this engine's 1.209 / 1.280 (the fixed median of three: 1.184 / 1.272, its August
median 0.948 worse than this engine's 0.918; the validation-best single method: 1.298 /
1.327, worse).
Why: across the month boundary the last weeks of history hardly tell which method wins the
truth week. The rank correlation between a VM's validation errors and its truth-week errors
over the 11 rules of the pool is 0.30 (July) and 0.13 (August), and the validation winner is
among the truth week's best three for 37 % and 32 % of the VMs (a random pick: 27 %), while
inside July (dev) it is 0.38-0.41 and about 50 %. The best of the pool per VM, knowing the
truth, is 1.013 / 1.085: even a perfect choice among them misses August's 1.069. The mean is
carried by VMs whose in-sample error is tiny and whose level moves between months: the 10
worst VMs have a median scale of 19 / 16 MHz (all VMs: 213 / 240) and carry 40 % / 37 % of the
summed MASE; with them at the median MASE the means would be 0.81 / 0.91. No change to the
engine was kept: 0.6-2 % off the mean, with a worse August median, does not pay for three more
methods inside the capacity forecast and the runway alerts.
"""

from __future__ import annotations

import argparse
import gzip
import math
import os
import warnings
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from corral.engines.forecast import bucket_means, forecast

ROOT = Path(__file__).resolve().parents[1]
HOUR = 3600.0
PAIRS = (("2013-7", "2013-8"), ("2013-8", "2013-9"))
HORIZON = 168
METHODS = ("corral", "naive 24h", "naive 168h", "Holt-Winters", "oracle flat", "oracle shift")
BASELINES = ("naive 24h", "naive 168h", "Holt-Winters")


@dataclass(frozen=True)
class Case:
    month: str
    vm: int
    times: np.ndarray
    values: np.ndarray
    start: float
    truth: np.ndarray


def default_data() -> Path:
    env = os.environ.get("CORRAL_SHARED_DATA")
    return (Path(env) if env else ROOT.parent / "shared" / "data") / "bitbrains-rnd"


def read_cpu(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Epoch seconds and CPU usage [MHz] of one VM-month (rows with 0 capacity skipped)."""
    times, values = [], []
    with gzip.open(path, "rt") as fh:
        next(fh)
        for line in fh:
            cells = line.split(";")
            if float(cells[2]) > 0:
                times.append(float(cells[0]))
                values.append(float(cells[3]))
    order = np.argsort(times, kind="stable")
    return np.asarray(times)[order], np.asarray(values)[order]


def load_case(data: Path, history_month: str, truth_month: str, vm: int) -> Case | None:
    times, values = read_cpu(data / "rnd" / history_month / f"{vm}.csv.gz")
    t_next, v_next = read_cpu(data / "rnd" / truth_month / f"{vm}.csv.gz")
    start = math.ceil(t_next[0] / HOUR) * HOUR
    truth = bucket_means(t_next, v_next, start + HORIZON * HOUR, HOUR)[-HORIZON:]
    hourly = bucket_means(times, values, start, HOUR)
    if np.isfinite(hourly).sum() < 14 * 24 or np.isfinite(truth).sum() < 150:
        return None
    return Case(history_month, vm, times, values, start, truth)


def _hourly_history(case: Case) -> tuple[np.ndarray, int]:
    """Hourly history up to its last sample (gaps filled) and the hours from it to the start."""
    hourly = bucket_means(case.times, case.values, case.start, HOUR)
    observed = int(np.flatnonzero(np.isfinite(hourly))[-1]) + 1
    y = hourly[:observed]
    gaps = ~np.isfinite(y)
    y[gaps] = np.interp(np.flatnonzero(gaps), np.flatnonzero(~gaps), y[~gaps])
    return y, len(hourly) - observed


def seasonal_naive(y: np.ndarray, lead: int, period: int) -> np.ndarray:
    n = len(y)
    out = []
    for i in range(n + lead, n + lead + HORIZON):
        while i >= n:
            i -= period
        out.append(y[i])
    return np.asarray(out)


def holt_winters(y: np.ndarray, lead: int) -> np.ndarray:
    from statsmodels.tsa.holtwinters import ExponentialSmoothing

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = ExponentialSmoothing(
            y, trend="add", damped_trend=True, seasonal="add", seasonal_periods=24
        ).fit()
        return np.asarray(model.forecast(lead + HORIZON))[-HORIZON:]


@dataclass(frozen=True)
class Result:
    month: str
    vm: int
    mase: dict[str, float]
    coverage: float
    last_week: float  # median of the history's last 7 days
    truth_median: float
    truth_mean: float


def evaluate(case: Case, with_ets: bool) -> Result:
    """MASE per method, the share of truth hours in Corral's band, and what the VM did."""
    ours = forecast(case.times, case.values, case.start, HORIZON * HOUR, HOUR)
    point = np.asarray([s.forecast for s in ours])
    lower = np.asarray([s.lower for s in ours])
    upper = np.asarray([s.upper for s in ours])
    hourly = bucket_means(case.times, case.values, case.start, HOUR)
    scale = float(np.nanmean(np.abs(hourly[24:] - hourly[:-24])))
    y, lead = _hourly_history(case)
    guesses = {
        "corral": point,
        "naive 24h": seasonal_naive(y, lead, 24),
        "naive 168h": seasonal_naive(y, lead, 168),
    }
    if with_ets:
        guesses["Holt-Winters"] = holt_winters(y, lead)
    ok = np.isfinite(case.truth)
    guesses["oracle flat"] = np.full(HORIZON, np.median(case.truth[ok]))
    guesses["oracle shift"] = point + np.median(case.truth[ok] - point[ok])
    mase = {k: float(np.mean(np.abs(g[ok] - case.truth[ok]))) / scale for k, g in guesses.items()}
    inside = (case.truth[ok] >= lower[ok]) & (case.truth[ok] <= upper[ok])
    last_week = float(np.median(y[-168:]))
    truth = case.truth[ok]
    return Result(
        case.month,
        case.vm,
        mase,
        float(inside.mean()),
        last_week,
        float(np.median(truth)),
        float(truth.mean()),
    )


def _run(args: tuple[Path, str, str, int, bool]) -> Result | None:
    data, history_month, truth_month, vm, with_ets = args
    case = load_case(data, history_month, truth_month, vm)
    return None if case is None else evaluate(case, with_ets)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=default_data(), help="bitbrains-rnd folder")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--vms", type=int, default=100, help="VMs 1..N (100 = the benchmark)")
    parser.add_argument("--no-ets", action="store_true", help="skip Holt-Winters (slow)")
    parser.add_argument("--top", type=int, default=5, help="VMs with the worst MASE to show")
    args = parser.parse_args()
    jobs = [
        (args.data, h, t, vm, not args.no_ets) for h, t in PAIRS for vm in range(1, args.vms + 1)
    ]
    with ProcessPoolExecutor(args.workers) as pool:
        results = [r for r in pool.map(_run, jobs, chunksize=4) if r is not None]
    for history_month, truth_month in PAIRS:
        rows = [r for r in results if r.month == history_month]
        print(f"\n{history_month} -> {truth_month}: {len(rows)} VMs, MASE (24 h seasonal scale)")
        print(f"  {'method':14} {'mean':>7} {'median':>7} {'coverage':>9}")
        for method in METHODS:
            values = [r.mase[method] for r in rows if method in r.mase]
            if not values:
                continue
            cover = f"{np.mean([r.coverage for r in rows]):9.1%}" if method == "corral" else ""
            print(f"  {method:14} {np.mean(values):7.3f} {np.median(values):7.3f} {cover:>9}")
        print_targets(rows)
        print_worst(rows, args.top)


def print_worst(rows: list[Result], top: int) -> None:
    """The VMs that weigh most in the mean: a change of level between the history's last week
    and the truth week (or a truth of rare huge spikes) shows as last week far from the truth."""
    worst = sorted(rows, key=lambda r: -r.mase["corral"])[:top]
    share = sum(r.mase["corral"] for r in worst) / sum(r.mase["corral"] for r in rows)
    print(f"  the {top} worst VMs carry {share:.0%} of the summed MASE:")
    print(
        f"  {'VM':>4} {'MASE':>6} {'last week median':>17} {'truth median':>13} {'truth mean':>11}"
    )
    for r in worst:
        print(
            f"  {r.vm:4d} {r.mase['corral']:6.2f} {r.last_week:17.1f} "
            f"{r.truth_median:13.1f} {r.truth_mean:11.1f}"
        )


def print_targets(rows: list[Result]) -> None:
    """The issue's three targets for one month: met or not, with the numbers."""
    means = {m: float(np.mean([r.mase[m] for r in rows])) for m in METHODS if m in rows[0].mase}
    medians = {m: float(np.median([r.mase[m] for r in rows])) for m in means}
    bar = 0.8 * min(means[m] for m in BASELINES if m in means)
    coverage = float(np.mean([r.coverage for r in rows]))
    checks = [(f"mean <= 0.8 x best baseline ({bar:.3f})", means["corral"] <= bar)]
    if "Holt-Winters" in medians:
        ets = medians["Holt-Winters"]
        checks.append((f"median <= Holt-Winters' ({ets:.3f})", medians["corral"] <= ets))
    checks.append((f"coverage in 70-90 % ({coverage:.1%})", 0.7 <= coverage <= 0.9))
    for text, met in checks:
        print(f"  target {text}: {'met' if met else 'NOT met'}")


if __name__ == "__main__":
    main()
