"""Migration 0700: the request tables go down and come back, with the one capacity lock row."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from sqlalchemy import inspect, text

from corral.store.db import MIGRATIONS, Database

TABLES = {"vm_requests", "request_decisions", "request_reservations", "quotas", "capacity_locks"}


def _alembic(db: Database, step: str, to: str) -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        getattr(command, step)(cfg, to)


def test_the_request_tables_downgrade_and_upgrade(db: Database) -> None:
    assert set(inspect(db.engine).get_table_names()) >= TABLES
    _alembic(db, "downgrade", "0600")
    assert not TABLES & set(inspect(db.engine).get_table_names())
    db.migrate()
    assert set(inspect(db.engine).get_table_names()) >= TABLES
    with db.engine.connect() as conn:
        rows = conn.execute(text("SELECT name, version FROM capacity_locks")).all()
    assert [tuple(r) for r in rows] == [("fleet", 0)]
