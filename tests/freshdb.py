"""Fresh, migrated test databases, copied from one migrated template per test process.

Why: running every migration for each test (and for each hypothesis example) cost about
0.3 s on SQLite and 0.6 s on PostgreSQL a time, on a quiet machine, for the same schema
every time. A copy of an already-migrated SQLite file, or a PostgreSQL database created
from an already-migrated template database, gives that schema, with the rows the migrations
seed, in a fraction of that. ``Database.migrate()`` still runs on the copy: at the head
revision it only checks the version, and a template left behind by an older checkout is
brought up to date there.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import time
from pathlib import Path

from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError

from corral.store.db import Database

_sqlite_template: Path | None = None
_pg_templates: set[str] = set()
#: One engine on the server's ``postgres`` database per server, kept for the whole process:
#: a new one for each test paid a connection and the dialect's first queries every time.
_pg_admins: dict[str, Engine] = {}


def fresh_sqlite(path: Path) -> Database:
    """A migrated SQLite database at ``path`` (which must not exist yet)."""
    shutil.copyfile(_sqlite_schema(), path)
    db = Database(f"sqlite:///{path}")
    db.migrate()
    return db


def migrated_home(home: Path) -> Path:
    """A Corral home as the CLI's first run leaves it: the folder (0700) and its SQLite
    database (0600), already migrated. A CLI subprocess on a new home otherwise imports
    alembic and runs every migration before doing what the test asks; the tests that are
    about that first run keep a bare home."""
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    target = home / "corral.db"
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out, _sqlite_schema().open("rb") as src:
        shutil.copyfileobj(src, out)
    return home


def _sqlite_schema() -> Path:
    """This process's migrated SQLite file, made on first use."""
    global _sqlite_template
    if _sqlite_template is None:
        folder = Path(tempfile.mkdtemp(prefix="corral-schema-"))
        atexit.register(shutil.rmtree, folder, True)
        template = folder / "template.db"
        db = Database(f"sqlite:///{template}")
        db.migrate()
        db.dispose()
        _sqlite_template = template
    return _sqlite_template


def fresh_postgresql(url: str) -> Database:
    """The database of ``url`` dropped and made again from a migrated template beside it.

    Connections of ours still open on it (a subprocess a test killed) are ended first."""
    parsed = make_url(url.replace("postgresql://", "postgresql+psycopg://", 1))
    name = parsed.database
    assert name, f"no database name in {url}"
    template = f"{name}_template"
    admin = _admin(parsed)
    quote = admin.dialect.identifier_preparer.quote
    if template not in _pg_templates:
        with admin.connect() as conn:
            _drop(conn, template)
            conn.execute(text(f"CREATE DATABASE {quote(template)}"))
        built = Database(url.rsplit("/", 1)[0] + "/" + template)
        built.migrate()
        built.dispose()
        _pg_templates.add(template)
    with admin.connect() as conn:
        _drop(conn, name)
        conn.execute(text(f"CREATE DATABASE {quote(name)} TEMPLATE {quote(template)}"))
    db = Database(url)
    db.migrate()
    return db


def _admin(parsed: URL) -> Engine:
    """The process's engine on the ``postgres`` database of the server ``parsed`` names."""
    server = parsed.set(database="postgres")
    key = server.render_as_string(hide_password=False)
    if key not in _pg_admins:
        engine = create_engine(server, isolation_level="AUTOCOMMIT", pool_pre_ping=True)
        atexit.register(engine.dispose)
        _pg_admins[key] = engine
    return _pg_admins[key]


def _drop(conn: Connection, name: str) -> None:
    """DROP DATABASE, ending this role's sessions on it first. Not ``WITH (FORCE)``: that
    refuses when a session of another role (the server's autovacuum) is there, which a plain
    DROP cancels by itself."""
    quoted = conn.dialect.identifier_preparer.quote(name)
    for _ in range(100):
        try:
            conn.execute(text(f"DROP DATABASE IF EXISTS {quoted}"))
            return
        except DBAPIError as exc:
            if getattr(exc.orig, "sqlstate", None) != "55006":  # object_in_use
                raise
        conn.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = :n AND usename = current_user AND pid <> pg_backend_pid()"
            ),
            {"n": name},
        )
        time.sleep(0.05)
    raise AssertionError(f"database {name} is still in use after 100 attempts to drop it")
