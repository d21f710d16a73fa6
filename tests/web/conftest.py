"""A small demo fleet served over real HTTP for the dashboard's tests.

The fleet is the demo's own (``build_demo``: libvirt test-driver hosts, a year of synced
history) with three days of Bitbrains traces replayed into a DuckDB metrics store, so every
page shows what it shows on ``corral demo``. Built once per module: it takes a few seconds.
"""

from __future__ import annotations

import os
import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from cryptography.fernet import Fernet
from fastapi import FastAPI
from fastapi.testclient import TestClient

from corral.api.app import create_app
from corral.config import Settings
from corral.demo.metrics import backfill_history, default_trace_dir, running_vms
from corral.demo.run import build_demo
from corral.hypervisor.uri import HostAccess
from corral.inventory.filters import VMFilter
from corral.inventory.service import Inventory
from corral.inventory.views import as_row
from corral.metrics.store import open_store
from corral.security.secrets import SecretBox
from corral.security.token_store import TokenStore
from tests.freshdb import fresh_postgresql, fresh_sqlite
from tests.requires import Resource, requires

CSRF = re.compile(r'name="csrf" value="([^"]+)"')
N_VMS = 60


@dataclass
class Demo:
    app: FastAPI
    inv: Inventory
    token: str
    home: Path


#: Every request goes to a person (none is approved on submit); production ones need two.
RULES = """
auto_approve: null
two_approvers: {production: true, min_monthly_cost: null}
"""


def build(home: Path, shared_data: Path, db_url: str | None = None) -> Demo:
    rules = home / "request-rules.yaml"
    rules.write_text(RULES)
    settings = Settings(
        home=home / "home",
        shared_data=shared_data,
        metrics_url=f"duckdb:///{home / 'metrics.duckdb'}",
        request_rules=rules,
        node_dir=home,  # where build_demo writes the hosts' node files (the restorer opens them)
    )
    # PostgreSQL: this run's own database, made again first
    db = fresh_postgresql(db_url) if db_url else fresh_sqlite(home / "corral.db")
    inv = Inventory(db, SecretBox(Fernet.generate_key()), access=HostAccess(node_dir=home))
    result = build_demo(inv, home / "nodes", seed=7, n_vms=N_VMS, n_hosts=3)
    trace_dir = default_trace_dir(shared_data)
    assert trace_dir is not None, f"no bitbrains-rnd traces under {shared_data}"
    store = open_store(settings.metrics_url)
    names = [h.name for h in result.fleet.hosts]
    backfill_history(store, running_vms(inv, names), trace_dir, 3, seed=7)
    token = TokenStore(db).create("dash-admin")
    return Demo(create_app(inv, settings=settings, metrics=store), inv, token, home)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> Iterator[Demo]:
    """The demo on SQLite (the browser tests)."""
    d = build(tmp_path_factory.mktemp("dash"), shared_data)
    yield d
    d.app.state.jobs.shutdown(wait=True)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def any_db_demo(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, shared_data: Path
) -> Iterator[Demo]:
    """The demo on SQLite and on PostgreSQL (the HTTP tests)."""
    url = None
    if request.param == "postgresql":
        requires(Resource.postgresql)
        url = os.environ["CORRAL_TEST_PG_URL"]
    d = build(tmp_path_factory.mktemp("dash"), shared_data, url)
    yield d
    d.app.state.jobs.shutdown(wait=True)
    d.inv.db.dispose()


@pytest.fixture
def db_demo(any_db_demo: Demo) -> Demo:
    """The demo on SQLite and on PostgreSQL, for one test (PostgreSQL's absence is
    counted for each test, not only the module's first)."""
    if any_db_demo.inv.db.engine.dialect.name == "postgresql":
        requires(Resource.postgresql)
    return any_db_demo


@pytest.fixture
def client(db_demo: Demo) -> Iterator[TestClient]:
    """A test client of ``db_demo``'s app, signed out."""
    with TestClient(db_demo.app, base_url="http://testserver") as c:
        yield c


@pytest.fixture
def running_vm(db_demo: Demo) -> dict[str, Any]:
    """A running VM of ``db_demo``, as the REST API shows it."""
    return as_row(db_demo.inv.list_vms(VMFilter(state="running"), limit=1).items[0])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def served(demo: Demo) -> Iterator[str]:
    """The demo's app under uvicorn on a free loopback port; yields its base URL."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(demo.app, host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=30)


def sign_in(client: TestClient, token: str) -> None:
    """Sign ``client`` in through the form, as a browser would."""
    page = client.get("/login")
    csrf = CSRF.search(page.text)
    assert csrf, page.text
    done = client.post(
        "/login", data={"csrf": csrf.group(1), "token": token, "next": "/"}, follow_redirects=False
    )
    assert done.status_code == 303, done.text


def csrf_of(client: TestClient, path: str = "/admin") -> str:
    found = CSRF.search(client.get(path).text)
    assert found
    return found.group(1)
