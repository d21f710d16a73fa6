"""What a test needs from outside Python, declared in one place; CI cannot pass by skipping.

A test (or a fixture) says what it needs with ``requires(Resource.X)`` or the marker
``@pytest.mark.requires("x")``. When the resource is there, the test runs and is counted
under it (the counts are printed at the end of the run, so CI's log shows how many tests ran
against PostgreSQL, the real hosts, Chromium ...). When it is missing, the test is skipped
with what to install, except in a strict run, where it FAILS: under ``CI=true``, or when the
resource's own variable is set (``CORRAL_REQUIRE_PG=1``, ``CORRAL_REQUIRE_REALHOST=1``).
"""

from __future__ import annotations

import enum
import importlib.util
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest


class Resource(enum.StrEnum):
    postgresql = "postgresql"
    realhost = "realhost"
    virsh = "virsh"
    victoriametrics = "victoriametrics"
    chromium = "chromium"
    playwright = "playwright"
    smtp = "smtp"
    promtool = "promtool"
    snmptrapd = "snmptrapd"
    alertmanager = "alertmanager"


#: A resource's own "this run must have it" variable, besides CI=true.
REQUIRE_VARIABLES = {
    Resource.postgresql: "CORRAL_REQUIRE_PG",
    Resource.realhost: "CORRAL_REQUIRE_REALHOST",
}
CHROMIUM = Path("/usr/bin/chromium")
VICTORIA_METRICS = shutil.which("victoria-metrics") or "/usr/bin/victoria-metrics"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
SNMPTRAPD = shutil.which("snmptrapd") or "/usr/sbin/snmptrapd"
SNMPTRAP = shutil.which("snmptrap") or "/usr/bin/snmptrap"
ALERTMANAGER = shutil.which("prometheus-alertmanager") or "/usr/bin/prometheus-alertmanager"

#: Why a resource is missing (None when it is there).
Check = Callable[[], str | None]


def _binary(path: str | Path | None, install: str) -> Check:
    return lambda: None if path and Path(path).exists() else f"{path} not found: {install}"


def _module(name: str, install: str) -> Check:
    return lambda: None if importlib.util.find_spec(name) else f"no module {name}: {install}"


def _postgresql() -> str | None:
    if os.environ.get("CORRAL_TEST_PG_URL"):
        return None
    return "PostgreSQL not configured: run scripts/pg.sh up and export CORRAL_TEST_PG_URL"


_CHECKS: dict[Resource, Check] = {
    Resource.postgresql: _postgresql,
    Resource.virsh: _binary(shutil.which("virsh"), "apt-get install libvirt-clients"),
    Resource.victoriametrics: _binary(VICTORIA_METRICS, "apt-get install victoria-metrics"),
    Resource.chromium: _binary(CHROMIUM, "apt-get install chromium"),
    Resource.playwright: _module("playwright", "pip install -e '.[dev]'"),
    Resource.smtp: _module("aiosmtpd", "pip install -e '.[dev]'"),
    Resource.promtool: _binary(PROMTOOL, "apt-get install prometheus"),
    Resource.snmptrapd: lambda: (
        _binary(SNMPTRAPD, "apt-get install snmptrapd")()
        or _binary(SNMPTRAP, "apt-get install snmp")()
    ),
    Resource.alertmanager: _binary(ALERTMANAGER, "apt-get install prometheus-alertmanager"),
}
_missing: dict[Resource, str | None] = {}
_used: dict[Resource, set[str]] = {r: set() for r in Resource}
_current: list[str] = [""]  # the node id of the test being set up or run


def register(resource: Resource, check: Check) -> None:
    """Give a resource its check (the real hosts' lives in tests/realhost/conftest.py)."""
    _CHECKS[resource] = check
    _missing.pop(resource, None)


def strict(resource: Resource) -> bool:
    """Whether a missing ``resource`` fails the test instead of skipping it."""
    variable = REQUIRE_VARIABLES.get(resource)
    return os.environ.get("CI") == "true" or bool(variable and os.environ.get(variable))


def requires(resource: Resource | str) -> None:
    """Run the current test only with ``resource``: skip without it, fail in a strict run."""
    resource = Resource(resource)
    if resource not in _missing:
        check = _CHECKS.get(resource)
        _missing[resource] = check() if check else f"no check registered for {resource}"
    reason = _missing[resource]
    if reason is not None:
        if strict(resource):
            pytest.fail(f"this test needs {resource}, which is missing: {reason}", pytrace=False)
        pytest.skip(f"needs {resource}: {reason}")
    if _current[0]:
        _used[resource].add(_current[0])


def set_current(nodeid: str) -> None:
    _current[0] = nodeid


def forget(nodeid: str) -> None:
    """A test that was skipped after all (by another resource) did not run with any."""
    for ids in _used.values():
        ids.discard(nodeid)


def used_by(nodeid: str) -> list[str]:
    """The resources the test ``nodeid`` asked for (sent with its report: under pytest-xdist
    the tests run in worker processes, and the counting happens in the controller)."""
    return sorted(r.value for r, ids in _used.items() if nodeid in ids)


_ran: dict[Resource, set[str]] = {r: set() for r in Resource}
_skipped: set[str] = set()


def note_report(nodeid: str, when: str, skipped: bool, resources: list[str] | None) -> None:
    """Count a test for its resources once its teardown is reported, unless it was skipped."""
    if skipped:
        _skipped.add(nodeid)
    if when == "teardown" and resources and nodeid not in _skipped:
        for name in resources:
            _ran[Resource(name)].add(nodeid)


def counts() -> dict[Resource, int]:
    """How many tests ran with each resource so far."""
    return {r: len(ids) for r, ids in _ran.items()}
