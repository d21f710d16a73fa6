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
import shutil
import tempfile
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from corral.store.db import Database

_sqlite_template: Path | None = None
_pg_templates: set[str] = set()


def fresh_sqlite(path: Path) -> Database:
    """A migrated SQLite database at ``path`` (which must not exist yet)."""
    global _sqlite_template
    if _sqlite_template is None:
        folder = Path(tempfile.mkdtemp(prefix="corral-schema-"))
        atexit.register(shutil.rmtree, folder, True)
        template = folder / "template.db"
        db = Database(f"sqlite:///{template}")
        db.migrate()
        db.dispose()
        _sqlite_template = template
    shutil.copyfile(_sqlite_template, path)
    db = Database(f"sqlite:///{path}")
    db.migrate()
    return db


def fresh_postgresql(url: str) -> Database:
    """The database of ``url`` dropped and made again from a migrated template beside it.

    Connections still open on it (a subprocess a test killed) are ended first."""
    parsed = make_url(url.replace("postgresql://", "postgresql+psycopg://", 1))
    name = parsed.database
    assert name, f"no database name in {url}"
    template = f"{name}_template"
    admin = create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    quote = admin.dialect.identifier_preparer.quote
    try:
        if template not in _pg_templates:
            with admin.connect() as conn:
                conn.execute(text(f"DROP DATABASE IF EXISTS {quote(template)} WITH (FORCE)"))
                conn.execute(text(f"CREATE DATABASE {quote(template)}"))
            built = Database(url.rsplit("/", 1)[0] + "/" + template)
            built.migrate()
            built.dispose()
            _pg_templates.add(template)
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {quote(name)} WITH (FORCE)"))
            conn.execute(text(f"CREATE DATABASE {quote(name)} TEMPLATE {quote(template)}"))
    finally:
        admin.dispose()
    db = Database(url)
    db.migrate()
    return db
