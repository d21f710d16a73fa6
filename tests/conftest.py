"""Shared fixtures: where the public data lives, and the project root."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import text

from corral.hypervisor.uri import HostAccess
from corral.inventory.service import Inventory
from corral.security.secrets import SecretBox
from corral.store.db import Database
from tests.freshdb import fresh_postgresql, fresh_sqlite
from tests.requires import Resource, counts, forget, note_report, requires, set_current, used_by

ROOT = Path(__file__).resolve().parents[1]


def shared_data_path() -> Path:
    """The shared data folder: $CORRAL_SHARED_DATA, else ../shared/data beside the repo."""
    env = os.environ.get("CORRAL_SHARED_DATA")
    return Path(env) if env else ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    path = shared_data_path()
    if not path.is_dir():
        pytest.fail(f"shared data folder {path} not found; set CORRAL_SHARED_DATA")
    return path


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw: float) -> None:
        self.now += timedelta(**kw)


def _pg_url() -> str:
    requires(Resource.postgresql)
    return os.environ["CORRAL_TEST_PG_URL"]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "requires(resource, ...): the test needs these resources (tests/requires.py)"
    )
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    url = os.environ.get("CORRAL_TEST_PG_URL")
    if worker and url:
        # Each pytest-xdist worker gets a database of its own: the ``db`` fixture makes it
        # again for every test. Set in the environment, so that subprocesses use it too.
        os.environ["CORRAL_TEST_PG_URL"] = _worker_database(url, worker)
    elif url:
        _worker_database(url, None)  # the one named, made if it does not exist yet


def _worker_database(url: str, worker: str | None) -> str:
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url

    base = make_url(url.replace("postgresql://", "postgresql+psycopg://", 1))
    name = f"{base.database}_{worker}" if worker else str(base.database)
    engine = create_engine(base.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            found = conn.execute(
                text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}
            ).first()
            if found is None:
                quoted = conn.dialect.identifier_preparer.quote(name)
                conn.execute(text(f"CREATE DATABASE {quoted}"))
    finally:
        engine.dispose()
    return url.rsplit("/", 1)[0] + "/" + name


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Note which test is running, and check what its ``requires`` markers name."""
    set_current(item.nodeid)
    for mark in item.iter_markers("requires"):
        for resource in mark.args:
            requires(resource)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()  # type: ignore[attr-defined]
    if report.when == "teardown":
        report.user_properties.append(("resources", used_by(item.nodeid)))


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped:
        forget(report.nodeid)
    resources = dict(report.user_properties).get("resources")
    note_report(report.nodeid, report.when, report.skipped, resources)  # type: ignore[arg-type]


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """How many tests ran with each outside resource: a skipped resource shows as 0."""
    terminalreporter.section("tests run per resource")
    for resource, count in counts().items():
        terminalreporter.write_line(f"{resource:<16} {count}")


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    if request.param == "sqlite":
        database = fresh_sqlite(tmp_path / "corral.db")
    else:
        database = fresh_postgresql(_pg_url())
    yield database
    database.dispose()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def inventory(db: Database, clock: Clock, tmp_path: Path) -> Inventory:
    """An inventory that may read test-driver node files anywhere under the test's tmp_path."""
    return Inventory(db, SecretBox(Fernet.generate_key()), clock, HostAccess(node_dir=tmp_path))


@pytest.fixture(autouse=True)
def _no_audit_actor() -> Iterator[None]:
    """Each test starts with nobody acting: a command run in-process (typer's CliRunner) sets
    the audit actor of the whole test process, which then leaked into the tests after it."""
    from corral.services.audit import set_actor

    set_actor(None)
    yield
    set_actor(None)
