"""An empty, migrated database for a benchmark (PostgreSQL's public schema is dropped first)."""

from __future__ import annotations

from sqlalchemy import text

from corral.store.db import Database


def fresh_database(url: str, reset_pg: bool) -> Database:
    db = Database(url)
    if reset_pg:
        with db.engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
    db.migrate()
    return db
