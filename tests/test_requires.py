"""tests/requires.py: a missing resource skips locally, FAILS under CI=true, and is counted."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from tests.conftest import ROOT
from tests.requires import Resource, requires

#: A test that needs both virsh (present here) and PostgreSQL (hidden from the child run).
TARGET = (
    "tests/inventory/test_metadata.py::"
    "test_set_metadata_visible_to_virsh_and_survives_db_loss[postgresql]"
)


def _pytest(**env: str) -> subprocess.CompletedProcess[str]:
    base = {
        k: v
        for k, v in os.environ.items()
        if k not in ("CI", "CORRAL_TEST_PG_URL", "CORRAL_REQUIRE_PG", "CORRAL_REQUIRE_REALHOST")
    }
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", TARGET],
        cwd=ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=300,
    )


def _counts(output: str) -> dict[str, int]:
    section = output.split("tests run per resource", 1)[1]
    return {name: int(count) for name, count in re.findall(r"^(\w+) +(\d+)$", section, re.M)}


def test_missing_resource_skips_outside_ci() -> None:
    proc = _pytest()
    assert proc.returncode == 0, proc.stdout[-2000:]
    assert "1 skipped" in proc.stdout and "needs postgresql" in proc.stdout
    assert _counts(proc.stdout)["postgresql"] == 0


def test_missing_resource_fails_under_ci() -> None:
    proc = _pytest(CI="true")
    assert proc.returncode == 1, proc.stdout[-2000:]
    assert "1 error" in proc.stdout and "needs postgresql, which is missing" in proc.stdout
    assert "skipped" not in proc.stdout


def test_require_variable_alone_makes_it_strict() -> None:
    proc = _pytest(CORRAL_REQUIRE_PG="1")
    assert proc.returncode == 1 and "needs postgresql, which is missing" in proc.stdout


def test_a_present_resource_is_counted() -> None:
    requires(Resource.postgresql)  # this run's database, lent to the child run meanwhile
    proc = _pytest(CI="true", CORRAL_TEST_PG_URL=os.environ["CORRAL_TEST_PG_URL"])
    assert proc.returncode == 0, proc.stdout[-2000:]
    counts = _counts(proc.stdout)
    assert set(counts) == {r.value for r in Resource}
    assert counts["postgresql"] == 1 and counts["virsh"] == 1 and counts["realhost"] == 0
