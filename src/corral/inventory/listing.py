# ruff: noqa: S608  (SQL text joins this module's fixed fragments; every value is a parameter)
"""The VM listing read straight from the database driver: ``corral vms`` without the ORM.

A listing is one or two SELECTs, yet going through the inventory service costs a command
SQLAlchemy, the ORM model graph and a schema check (0.4 s of imports before the first row).
This module answers the same question with the driver alone (``sqlite3``, or ``psycopg`` for
PostgreSQL): the same filter, the same order, the same total, each row the inventory
service's own :class:`~corral.inventory.views.VMSummary`. tests/inventory/test_listing.py
checks, on random inventories and on both databases, that both give the same page.

It only reads a database that is already current. With no database yet, a schema to
migrate, or a URL it does not know how to open, :func:`quick_page` answers None and the
caller asks the inventory service, which creates, migrates and reports errors as always.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Literal, Protocol, get_args

import orjson

from corral.config import Settings, ensure_private_dir
from corral.domain.text import check_text
from corral.errors import ValidationError
from corral.inventory.views import VMSummary, vm_state
from corral.store.revision import HEAD_REVISION

#: The keys a listing sorts by (each is a column of the VM table).
SortKey = Literal[
    "name",
    "state",
    "vcpus",
    "memory_mib",
    "created_at",
    "state_since",
    "owner",
    "department",
    "disk_bytes",
]
SORT_COLUMNS: tuple[str, ...] = get_args(SortKey)
#: Sort keys whose missing values sort as the empty text.
_BLANK_AS_EMPTY = ("owner", "department")


@dataclass(frozen=True, slots=True)
class VMFilter:
    host: str | None = None
    state: str | None = None
    owner: str | None = None
    department: str | None = None
    project: str | None = None
    environment: str | None = None
    tag: str | None = None
    search: str | None = None
    no_owner: bool = False
    no_purpose: bool = False
    template: bool | None = None
    older_than_days: int | None = None
    off_for_days: int | None = None
    expired: bool = False
    include_deleted: bool = False
    only_deleted: bool = False
    #: Only VMs of these departments (a department-scoped caller's view); None: every VM.
    departments: frozenset[str] | None = None

    def __post_init__(self) -> None:
        for name in ("host", "state", "owner", "department", "project", "environment", "tag"):
            check_text(getattr(self, name) or "", name)
        check_text(self.search or "", "the search text")


@dataclass(frozen=True, slots=True)
class ListedPage:
    """The VMs of a listing (at most its limit) and how many VMs the filter selects (None:
    not counted)."""

    items: tuple[VMSummary, ...]
    total: int | None


@dataclass(frozen=True, slots=True)
class VMCount:
    """How many VMs a filter selects; ``exact`` False: PostgreSQL's planner estimate."""

    count: int
    exact: bool


def check_sort(sort: str) -> str:
    if sort not in SORT_COLUMNS:
        raise ValidationError(
            f"cannot sort by {sort!r}; choose one of {', '.join(sorted(SORT_COLUMNS))}."
        )
    return sort


def quick_page(
    settings: Settings,
    f: VMFilter,
    *,
    sort: str = "name",
    descending: bool = False,
    limit: int | None = None,
) -> ListedPage | None:
    """The listing from the settings' database, or None when the inventory service must
    answer (no database yet, an older schema, a URL this reader does not open)."""
    check_sort(sort)
    ensure_private_dir(settings.home)  # as the inventory service does for every command
    with connect(settings.database_url) as reader:
        if reader is None:
            return None
        try:
            return reader.page(f, sort=sort, descending=descending, limit=limit)
        except reader.errors:  # busy, gone, broken: the service reports it in its words
            return None


class _Cursor(Protocol):
    def execute(self, sql: str, params: Sequence[Any] = ..., /) -> Any: ...
    def fetchall(self) -> list[Any]: ...


class _Connection(Protocol):
    def cursor(self) -> Any: ...
    def rollback(self) -> None: ...
    def close(self) -> None: ...


@contextmanager
def connect(database_url: str) -> Iterator[VMReader | None]:
    """A reader on a current database, or None (see :func:`quick_page`)."""
    reader = _open(database_url)
    if reader is None:
        yield None
        return
    try:
        yield reader if reader.at_head() else None
    finally:
        reader.close()


def driver_errors(*, sqlite: bool) -> tuple[type[Exception], ...]:
    """What the database driver raises when a read fails."""
    if sqlite:
        import sqlite3

        return (sqlite3.Error,)
    import psycopg

    return (psycopg.Error,)


def _open(url: str) -> VMReader | None:
    scheme, sep, rest = url.partition("://")
    if not sep or "?" in rest or "%" in rest:
        return None  # options or escapes: leave the URL to SQLAlchemy
    if scheme in ("sqlite", "sqlite+pysqlite"):
        return _open_sqlite(rest)
    if scheme in ("postgresql", "postgres", "postgresql+psycopg"):
        return _open_postgresql("postgresql://" + rest)
    return None


def _open_sqlite(rest: str) -> VMReader | None:
    if not rest.startswith("/") or rest in ("/", "/:memory:"):
        return None
    path = rest[1:]  # sqlite:///relative, sqlite:////absolute
    if path.startswith("~") or not Path(path).is_file():
        return None
    import sqlite3

    try:
        # The file exists: open it for reading without ever creating one; autocommit, so
        # the BEGIN below is the one transaction (one snapshot) of both queries.
        conn = sqlite3.connect(Path(path).resolve().as_uri() + "?mode=rw", uri=True)
    except sqlite3.Error:
        return None
    conn.isolation_level = None
    return VMReader(conn, sqlite=True, errors=(sqlite3.Error,))


def _open_postgresql(url: str) -> VMReader | None:
    import psycopg

    try:
        conn = psycopg.connect(url)
    except psycopg.Error:
        return None
    return VMReader(conn, sqlite=False, errors=(psycopg.Error,))


class VMReader:
    """VM rows of one open database connection: SQLite (``?`` parameters, text times) or
    PostgreSQL (``%s`` parameters, typed values)."""

    def __init__(
        self, conn: _Connection, *, sqlite: bool, errors: tuple[type[Exception], ...]
    ) -> None:
        self.conn = conn
        self.sqlite = sqlite
        self.errors = errors
        self.mark = "?" if sqlite else "%s"

    def close(self) -> None:
        self.conn.close()

    def at_head(self) -> bool:
        try:
            rows = self._fetch("SELECT version_num FROM alembic_version", [])
        except self.errors:
            return False
        return [r[0] for r in rows] == [HEAD_REVISION]

    def page(
        self,
        f: VMFilter,
        *,
        sort: str = "name",
        descending: bool = False,
        limit: int | None = None,
        now: datetime | None = None,
        after: tuple[Any, str] | None = None,
        count: bool = True,
    ) -> ListedPage:
        """What the inventory service's ``list_vms`` gives for the same arguments: the rows
        after the keyset ``after`` (sort value, UUID), counted in the same snapshot when
        ``count``."""
        key = f"vms.{check_sort(sort)}"
        if sort in _BLANK_AS_EMPTY:
            key = f"coalesce({key}, '')"
        way = "DESC" if descending else "ASC"
        where, params = self._where(f, now or datetime.now(UTC))
        rows_where, rows_params = where, list(params)
        if after is not None:
            # A row-value comparison: one index range scan from the cursor on.
            cond = f"({key}, vms.uuid) {'<' if descending else '>'} ({self.mark}, {self.mark})"
            rows_where += (" AND " if rows_where else " WHERE ") + cond
            rows_params += [self._key_value(after[0]), after[1]]
        rows_sql = (
            f"SELECT {_COLUMNS} FROM vms LEFT OUTER JOIN hosts ON vms.host_id = hosts.id"
            f"{rows_where} ORDER BY {key} {way}, vms.uuid {way}"
        )
        if limit is not None:
            rows_sql += f" LIMIT {self.mark}"
            rows_params.append(limit)
        total = None
        if count:
            if self.sqlite:
                self._fetch("BEGIN", [])  # one snapshot for both queries
            total = self._fetch(f"SELECT count(*) FROM vms{where}", params)[0][0]
        rows = self._fetch(rows_sql, rows_params)
        self.conn.rollback()  # read only: nothing to keep
        return ListedPage(tuple(self._vm(r) for r in rows), total)

    def count(self, f: VMFilter, *, now: datetime, estimate: bool = False) -> VMCount:
        """How many VMs ``f`` selects. ``estimate`` on PostgreSQL: the planner's row estimate
        (from the table statistics, no rows read), which can be off by a few per cent; SQLite
        has no such estimate and always counts."""
        where, params = self._where(f, now)
        if estimate and not self.sqlite:
            plan = self._fetch(f"EXPLAIN (FORMAT JSON) SELECT 1 FROM vms{where}", params)
            self.conn.rollback()
            return VMCount(int(plan[0][0][0]["Plan"]["Plan Rows"]), exact=False)
        counted = self._fetch(f"SELECT count(*) FROM vms{where}", params)
        self.conn.rollback()
        return VMCount(int(counted[0][0]), exact=True)

    def _key_value(self, value: Any) -> Any:
        """A cursor's sort value as the column stores it."""
        return self._moment(value) if isinstance(value, datetime) else value

    def _fetch(self, sql: str, params: Sequence[Any]) -> list[Any]:
        cur: _Cursor = self.conn.cursor()
        cur.execute(sql, params)
        return cur.fetchall() if sql.startswith(("SELECT", "EXPLAIN")) else []

    def _where(self, f: VMFilter, now: datetime) -> tuple[str, list[Any]]:
        """The WHERE clause of ``corral.inventory.filters.apply_filter``, condition by condition."""
        conds: list[str] = []
        params: list[Any] = []
        p = self.mark

        def add(cond: str, *values: Any) -> None:
            conds.append(cond)
            params.extend(values)

        if f.only_deleted:
            add("vms.deleted_at IS NOT NULL")
        elif not f.include_deleted:
            add("vms.deleted_at IS NULL")
        if f.host:
            add(f"vms.host_id IN (SELECT hosts.id FROM hosts WHERE hosts.name = {p})", f.host)
        for column in ("state", "owner", "department", "project", "environment"):
            value = getattr(f, column)
            if value:
                add(f"vms.{column} = {p}", value)
        if f.departments is not None:
            wanted = sorted(f.departments)
            marks = ", ".join([p] * len(wanted))
            add(f"vms.department IN ({marks})" if wanted else "1 != 1", *wanted)
        if f.search:
            needle = f.search.lower()  # anywhere in a name or purpose; the start of a UUID
            add(
                f"(lower(vms.name) LIKE {p} OR vms.uuid LIKE {p}"
                f" OR lower(coalesce(vms.purpose, '')) LIKE {p})",
                f"%{needle}%",
                f"{needle}%",
                f"%{needle}%",
            )
        if f.no_owner:
            add("(vms.owner IS NULL OR vms.owner = '')")
        if f.no_purpose:
            add("(vms.purpose IS NULL OR vms.purpose = '')")
        if f.template is not None:
            add(f"vms.is_template = {p}", f.template)
        if f.older_than_days is not None:
            add(f"vms.created_at <= {p}", self._moment(now - timedelta(days=f.older_than_days)))
        if f.off_for_days is not None:
            since = self._moment(now - timedelta(days=f.off_for_days))
            add(f"vms.state = 'shutoff' AND vms.state_since <= {p}", since)
        if f.expired:
            add(f"vms.expires_on IS NOT NULL AND vms.expires_on < {p}", self._day(now.date()))
        if f.tag:
            # Tags are a JSON list; match the quoted element in its text form (portable).
            add(f"CAST(vms.tags AS VARCHAR) LIKE {p} ESCAPE {p}", f'%"{escape_like(f.tag)}"%', "\\")
        return (" WHERE " + " AND ".join(f"({c})" for c in conds) if conds else ""), params

    def _moment(self, value: datetime) -> Any:
        """A UTC time as the column stores it: SQLite holds SQLAlchemy's text form."""
        if not self.sqlite:
            return value
        v = value.astimezone(UTC)
        return (
            f"{v.year:04d}-{v.month:02d}-{v.day:02d} "
            f"{v.hour:02d}:{v.minute:02d}:{v.second:02d}.{v.microsecond:06d}"
        )

    def _day(self, value: date) -> Any:
        return f"{value.year:04d}-{value.month:02d}-{value.day:02d}" if self.sqlite else value

    def _vm(self, r: Sequence[Any]) -> VMSummary:
        """A row of the raw SQL listing: its dates, times and tags decoded, then the view.
        A REST page builds 100 of these per request, so each step is the cheapest exact one."""
        tags = orjson.loads(r[16]) if self.sqlite and r[16] is not None else r[16]
        deleted = r[20]
        return summary_of(
            (
                *r[:14],
                _date(r[14]),
                r[15],
                tags,
                bool(r[17]),
                _utc(r[18]),
                _utc(r[19]),
                None if deleted is None else _utc(deleted),
            )
        )


_COLUMNS = ", ".join(
    (
        "vms.uuid",
        "vms.name",
        "hosts.name",
        "vms.state",
        "vms.vcpus",
        "vms.memory_mib",
        "vms.memory_max_mib",
        "vms.disk_bytes",
        "vms.snapshot_count",
        "vms.owner",
        "vms.department",
        "vms.purpose",
        "vms.project",
        "vms.environment",
        "vms.expires_on",
        "vms.protection_tier",
        "vms.tags",
        "vms.is_template",
        "vms.created_at",
        "vms.state_since",
        "vms.deleted_at",
    )
)


def escape_like(text: str) -> str:
    """``text`` as a LIKE pattern that matches itself (backslash escapes), inside JSON quotes."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_").replace('"', '\\"')


def _utc(value: datetime | str) -> datetime:
    """A stored time as an aware UTC datetime, as the ORM's UTCDateTime column gives it.
    SQLite's text is naive UTC: parsed with the offset appended, which is five times quicker
    than ``replace(tzinfo=UTC)`` after; PostgreSQL's is aware, in UTC when the session is."""
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value + "+00:00")
        except ValueError:  # text with an offset of its own, or a date alone
            value = datetime.fromisoformat(value)
    if value.tzinfo is UTC:
        return value
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _date(value: date | str | None) -> date | None:
    return date.fromisoformat(value) if isinstance(value, str) else value


def summary_columns() -> tuple[Any, ...]:
    """The columns a listing row needs, for a SQLAlchemy Core ``select`` over the VM table
    joined to its host: a page of 100 loads no ORM objects and none of the device lists."""
    from corral.store import models as m

    vm = m.VM
    return (
        vm.uuid,
        vm.name,
        m.Host.name.label("host_name"),
        vm.state,
        vm.vcpus,
        vm.memory_mib,
        vm.memory_max_mib,
        vm.disk_bytes,
        vm.snapshot_count,
        vm.owner,
        vm.department,
        vm.purpose,
        vm.project,
        vm.environment,
        vm.expires_on,
        vm.protection_tier,
        vm.tags,
        vm.is_template,
        vm.created_at,
        vm.state_since,
        vm.deleted_at,
    )


def summary_of(r: Sequence[Any]) -> VMSummary:
    """A row of ``summary_columns`` (values already typed by SQLAlchemy) as the listing's view."""
    disk_bytes = r[7] or 0
    return VMSummary(
        uuid=r[0],
        name=r[1],
        host=r[2],
        state=vm_state(r[3]),
        vcpus=r[4],
        memory_mib=r[5],
        memory_max_mib=r[6],
        disk_gib=round(disk_bytes / 1024**3, 1),
        disk_bytes=disk_bytes,
        snapshots=r[8],
        owner=r[9],
        department=r[10],
        purpose=r[11],
        project=r[12],
        environment=r[13],
        expires_on=r[14],
        protection_tier=r[15],
        tags=tuple(r[16] or ()),
        is_template=r[17],
        created_at=r[18],
        state_since=r[19],
        deleted_at=r[20],
    )
