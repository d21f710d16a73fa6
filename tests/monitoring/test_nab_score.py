"""The NAB scorer reproduces NAB's published per-file results of its numenta detector."""

from __future__ import annotations

from pathlib import Path

import pytest

from corral.engines.anomaly.nab_data import load_files, published_scores, reference_rows
from corral.engines.anomaly.nab_score import (
    STANDARD,
    normalized,
    probation_rows,
    scaled_sigmoid,
    score_file,
)

NUMENTA_STANDARD_THRESHOLD = 0.5421876907348634  # NAB config/thresholds.json
TOLERANCE = 1e-6  # published scores are printed with ~12 significant digits


@pytest.fixture(scope="module")
def nab(shared_data: Path) -> Path:
    return shared_data / "nab-aws"


def test_scorer_reproduces_numenta_per_file_scores_and_counts(nab: Path) -> None:
    published = {
        p.key: p
        for p in published_scores(nab)
        if (p.detector, p.profile) == ("numenta", "standard")
    }
    files = load_files(nab)
    assert len(files) == 14 and set(published) == {f.key for f in files}
    total = 0.0
    for f in files:
        alerts = [s >= NUMENTA_STANDARD_THRESHOLD for s in reference_rows(nab, f.key)]
        got = score_file(f.times, alerts, f.windows, STANDARD)
        want = published[f.key]
        assert got.score == pytest.approx(want.score, abs=TOLERANCE), f.key
        assert (got.tp, got.tn, got.fp, got.fn) == (want.tp, want.tn, want.fp, want.fn), f.key
        total += got.score
    assert normalized(total, sum(len(f.windows) for f in files)) == pytest.approx(69.0, abs=0.05)


def test_null_and_perfect_detectors_bound_the_scale() -> None:
    times = [float(i) for i in range(100)]
    windows = [(40.0, 49.0)]
    assert score_file(times, [False] * 100, windows).score == -1.0
    perfect = [t == 40.0 for t in times]
    assert score_file(times, perfect, windows).score == pytest.approx(1.0)
    assert normalized(-1.0, 1) == 0.0 and normalized(1.0, 1) == 100.0


def test_late_detection_scores_less_and_far_false_positive_costs_full_weight() -> None:
    times = [float(i) for i in range(1000)]
    windows = [(500.0, 599.0)]
    early = score_file(times, [t == 500.0 for t in times], windows).score
    late = score_file(times, [t == 590.0 for t in times], windows).score
    assert early > late > 0
    far_fp = score_file(times, [t in (500.0, 999.0) for t in times], windows).score
    assert far_fp == pytest.approx(early - STANDARD.fp)
    assert probation_rows(1000) == 150 and probation_rows(18050) == 750
    assert scaled_sigmoid(3.5) == -1.0


def test_detections_in_probation_are_not_scored() -> None:
    times = [float(i) for i in range(1000)]
    assert score_file(times, [t < 150 for t in times], []).score == 0.0
