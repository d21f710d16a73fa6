"""The quick VM listing (corral.inventory.listing) gives what the inventory service gives.

``corral vms`` reads a current database with the driver alone; the inventory service reads it
through the ORM. On random inventories (hosts, owners, leases, tags, templates, deleted rows)
and random filters, sort keys and limits, both must give the same total and the same rows,
rendered the same in every output format, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import contextlib
import io
import uuid as uuidlib
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, text

from corral.cli.output import OutputFormat, emit, to_json
from corral.config import Settings
from corral.inventory.filters import SORT_KEYS
from corral.inventory.listing import SORT_COLUMNS, VMFilter, connect, quick_page
from corral.inventory.service import Inventory
from corral.security.secrets import SecretBox
from corral.store import models as m
from corral.store.db import Database
from tests.conftest import _pg_url
from tests.freshdb import fresh_postgresql

NOW = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
HOSTS = ("kvm-a", "kvm-b", "KVM-c")
WORDS = (None, "", "", "alice", "Alice", "bob", "50%", "a_b", "é")
TAGS = ("web", "we", "db", "b", 'a"b', "50%", "x_y", "back\\slash", "É")
SEARCHES = ("a", "A", "b", "B", "é", "É", "%", "_", "1", "-", "00")
COLUMNS = ["name", "host", "state", "vcpus", "memory_mib", "disk_gib", "owner", "department"]


@dataclass(frozen=True)
class Case:
    vms: list[dict[str, Any]]
    hosts: int
    f: VMFilter
    sort: str
    descending: bool
    limit: int | None


def _moment() -> st.SearchStrategy[datetime]:
    """Times around NOW: some exactly N days back (the filters' boundaries), some anywhere."""
    whole_days = st.integers(0, 12).map(lambda d: NOW - timedelta(days=d))
    anywhere = st.integers(-86_400, 40 * 86_400).flatmap(
        lambda s: st.integers(0, 999_999).map(
            lambda us: NOW - timedelta(seconds=s, microseconds=us)
        )
    )
    return st.one_of(whole_days, anywhere)


@st.composite
def _vm(draw: st.DrawFn, hosts: int) -> dict[str, Any]:
    created = draw(_moment())
    return {
        "uuid": str(draw(st.uuids())),
        "name": draw(st.text(st.sampled_from("abAB_%éÉ- 1"), min_size=1, max_size=6)),
        "host": draw(st.none() | st.integers(0, hosts - 1)) if hosts else None,
        "state": draw(st.sampled_from(["running", "shutoff", "paused", "crashed"])),
        "state_since": draw(_moment()),
        "vcpus": draw(st.integers(1, 4)),
        "memory_mib": draw(st.sampled_from([512, 1024, 2048])),
        "memory_max_mib": 4096,
        "disk_bytes": draw(st.sampled_from([0, 10 * 1024**3, 1536 * 1024**2, 1_325_000_000, 7])),
        "snapshot_count": draw(st.integers(0, 3)),
        "owner": draw(st.sampled_from(WORDS)),
        "department": draw(st.sampled_from(WORDS)),
        "purpose": draw(st.sampled_from(WORDS)),
        "project": draw(st.sampled_from(WORDS)),
        "environment": draw(st.sampled_from((None, "prod", "dev"))),
        "expires_on": draw(st.none() | st.integers(-5, 5).map(lambda d: NOW.date() + timedelta(d))),
        "protection_tier": draw(st.sampled_from((None, "backup-only"))),
        "tags": draw(st.lists(st.sampled_from(TAGS), max_size=3, unique=True)),
        "is_template": draw(st.booleans()),
        "created_at": created,
        "first_seen_at": created,
        "updated_at": created,
        "deleted_at": draw(_moment()) if draw(st.integers(0, 3)) == 0 else None,
    }


#: What each filter field may be set to (the values the random inventories hold, and others).
FILTER_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "host": st.sampled_from((*HOSTS, "nowhere")),
    "state": st.sampled_from(("running", "shutoff")),
    "owner": st.sampled_from(WORDS[1:]),
    "department": st.sampled_from(WORDS[1:]),
    "project": st.sampled_from(WORDS[1:]),
    "environment": st.sampled_from(("prod", "dev")),
    "tag": st.sampled_from(TAGS),
    "search": st.sampled_from(SEARCHES),
    "no_owner": st.just(True),
    "no_purpose": st.just(True),
    "template": st.booleans(),
    "older_than_days": st.integers(0, 12),
    "off_for_days": st.integers(0, 12),
    "expired": st.just(True),
    "include_deleted": st.just(True),
    "only_deleted": st.just(True),
    "departments": st.frozensets(st.sampled_from(WORDS[1:]), max_size=2),
}


@st.composite
def _filter(draw: st.DrawFn) -> VMFilter:
    """A few fields set at a time, as people filter (all of them at once selects nothing)."""
    chosen = draw(st.sets(st.sampled_from(sorted(FILTER_VALUES)), max_size=3))
    return VMFilter(**{name: draw(FILTER_VALUES[name]) for name in sorted(chosen)})


@st.composite
def _case(draw: st.DrawFn) -> Case:
    hosts = draw(st.integers(0, len(HOSTS)))
    vms = draw(st.lists(_vm(hosts), min_size=1, max_size=12, unique_by=lambda v: v["uuid"]))
    return Case(
        vms=vms,
        hosts=hosts,
        f=draw(_filter()),
        sort=draw(st.sampled_from(SORT_COLUMNS)),
        descending=draw(st.booleans()),
        limit=draw(st.none() | st.integers(0, 6)),
    )


def _store(db: Database, case: Case) -> None:
    with db.session() as s:
        s.execute(delete(m.VM))
        s.execute(delete(m.Host))
        ids = []
        for i in range(case.hosts):
            host = m.Host(name=HOSTS[i], uri=f"test:///{i}", created_at=NOW)
            s.add(host)
            s.flush()
            ids.append(host.id)
        for vm in case.vms:
            cols = {k: v for k, v in vm.items() if k != "host"}
            s.add(m.VM(**cols, host_id=None if vm["host"] is None else ids[vm["host"]]))


def _rendered(rows: Any, output: OutputFormat) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        emit(rows, output, COLUMNS, title="VMs")
    return out.getvalue()


def _url(db: Database) -> str:
    return db.url.render_as_string(hide_password=False)


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(case=_case())
def test_the_quick_listing_equals_the_inventory_services(db: Database, case: Case) -> None:
    _store(db, case)
    inventory = Inventory(db, SecretBox(Fernet.generate_key()), lambda: NOW)
    args: dict[str, Any] = {"sort": case.sort, "descending": case.descending, "limit": case.limit}
    orm = inventory.list_vms(case.f, **args)
    with connect(_url(db)) as reader:
        assert reader is not None, "the quick listing did not open a current database"
        quick = reader.page(case.f, **args, now=NOW)
    event(f"{'some' if orm.items else 'no'} rows")
    assert quick.total == orm.total
    assert quick.items == orm.items  # the same typed rows, field by field
    assert to_json(list(quick.items)) == to_json(list(orm.items))
    for output in OutputFormat:
        assert _rendered(quick.items, output) == _rendered(orm.items, output)


def test_the_sort_keys_are_the_services() -> None:
    assert tuple(SORT_KEYS) == SORT_COLUMNS


def _settings(tmp_path: Path, url: str) -> Settings:
    return Settings(home=tmp_path / "home", database_url=url)


def test_a_database_not_yet_made_is_left_to_the_service(tmp_path: Path) -> None:
    missing = tmp_path / "none.db"
    assert quick_page(_settings(tmp_path, f"sqlite:///{missing}"), VMFilter()) is None
    assert not missing.exists(), "the quick listing created a database file"


def test_an_older_schema_is_left_to_the_service(db: Database, tmp_path: Path) -> None:
    with db.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0001'"))
    assert quick_page(_settings(tmp_path, _url(db)), VMFilter()) is None


@pytest.mark.parametrize(
    "url", ["sqlite://", "sqlite:///:memory:", "sqlite:///x.db?mode=ro", "mysql://u@h/db"]
)
def test_urls_it_does_not_open_are_left_to_the_service(tmp_path: Path, url: str) -> None:
    assert quick_page(_settings(tmp_path, url), VMFilter()) is None


def test_a_current_database_is_read_quickly(db: Database, tmp_path: Path) -> None:
    case = Case(
        vms=[
            {
                "uuid": str(uuidlib.UUID(int=n)),
                "name": f"vm-{n}",
                "host": None,
                "state": "running",
                "state_since": NOW,
                "vcpus": 2,
                "memory_mib": 1024,
                "memory_max_mib": 1024,
                "created_at": NOW,
                "first_seen_at": NOW,
                "updated_at": NOW,
                "expires_on": date(2026, 7, 1),
            }
            for n in range(3)
        ],
        hosts=0,
        f=VMFilter(),
        sort="name",
        descending=True,
        limit=2,
    )
    _store(db, case)
    page = quick_page(
        _settings(tmp_path, _url(db)), VMFilter(), sort="name", descending=True, limit=2
    )
    assert page is not None
    assert (page.total, [vm.name for vm in page.items]) == (3, ["vm-2", "vm-1"])
    assert page.items[0].expires_on == date(2026, 7, 1) and page.items[0].created_at == NOW


def _vm_row(uuid: str, name: str, purpose: str | None = None) -> dict[str, Any]:
    return {
        "uuid": uuid,
        "name": name,
        "host": None,
        "state": "running",
        "state_since": NOW,
        "vcpus": 1,
        "memory_mib": 512,
        "memory_max_mib": 512,
        "purpose": purpose,
        "created_at": NOW,
        "first_seen_at": NOW,
        "updated_at": NOW,
    }


SEARCHED = [
    _vm_row("cafe0000-0000-4000-8000-000000000001", "alpha"),
    _vm_row("0000cafe-0000-4000-8000-000000000002", "beta"),  # "cafe" inside its UUID only
    _vm_row("00000000-0000-4000-8000-000000000003", "Web-CAFE-01"),
    _vm_row("00000000-0000-4000-8000-000000000004", "gamma", purpose="the Cafe's till"),
    _vm_row("00000000-0000-4000-8000-000000000005", "delta"),
]


@pytest.mark.parametrize(
    ("search", "found"),
    [
        ("cafe", ["Web-CAFE-01", "alpha", "gamma"]),  # beta's UUID holds it, not at the start
        ("CaFe0000", ["alpha"]),
        ("00000000-0000-4000-8000-000000000005", ["delta"]),  # a whole UUID pasted
        ("00000000-0000-4000", ["Web-CAFE-01", "delta", "gamma"]),
        ("8000-000000000002", []),  # the end of a UUID is not its start
        ("ta", ["beta", "delta"]),
    ],
)
def test_the_search_matches_names_and_purposes_anywhere_and_uuids_from_their_start(
    db: Database, tmp_path: Path, search: str, found: list[str]
) -> None:
    """Both readers (the service's and the quick listing's) search alike: the text anywhere
    in a name or purpose, ignoring case, and at the start of a UUID (migration 2500)."""
    _store(db, Case(SEARCHED, 0, VMFilter(), "name", False, None))
    inventory = Inventory(db, SecretBox(Fernet.generate_key()), lambda: NOW)
    f = VMFilter(search=search)
    assert [vm.name for vm in inventory.list_vms(f).items] == found
    page = quick_page(_settings(tmp_path, _url(db)), f)
    assert page is not None
    assert ([vm.name for vm in page.items], page.total) == (found, len(found))


def test_the_start_of_a_uuid_is_searched_by_an_index_on_postgresql() -> None:
    """(SQLite scans for the search, as before: migration 2500 indexes PostgreSQL only.)"""
    db = fresh_postgresql(_pg_url())
    many = [_vm_row(str(uuidlib.UUID(int=n * 7919)), f"vm-{n}") for n in range(1, 500)]
    _store(db, Case(many, 0, VMFilter(), "name", False, None))
    with db.engine.begin() as conn:
        conn.execute(text("ANALYZE vms"))
        conn.execute(text("SET LOCAL enable_seqscan = off"))
        plan = conn.execute(
            text("EXPLAIN SELECT uuid FROM vms WHERE deleted_at IS NULL AND uuid LIKE :p"),
            {"p": "cafe%"},
        ).scalars()
        assert "Index Cond" in (found := "\n".join(plan)), found
        assert "ix_vms_live_uuid_prefix" in found, found
    db.dispose()
