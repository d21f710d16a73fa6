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


def _columns(db: Database, table: str) -> set[str]:
    return {c["name"] for c in inspect(db.engine).get_columns(table)}


def test_2200_drops_the_unread_start_delay_of_request_vms_and_keeps_the_rows(
    db: Database,
) -> None:
    """Migration 2200: a unit's start delays come from its blueprint's tiers; the copy each
    claimed VM kept was never read. A row written before it survives both ways."""
    _alembic(db, "downgrade", "2100")
    assert "start_delay_s" in _columns(db, "request_vms")
    now = "2026-12-04 12:00:00"
    with db.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO vm_requests (id, kind, requester, owner, department, purpose,"
                " environment, template, count, vcpus, memory_mib, disk_gb, lease_days,"
                " monthly_cost, currency, state, approvals_needed, reasons, placement,"
                " capacity_status, provisioned_vms, created_at, updated_at, tiers)"
                " VALUES (7, 'vms', 'a', 'a', 'red', 'p', 'dev', 't', 1, 1, 1024, 1.0, 30,"
                " 1.0, 'USD', 'provisioning', 1, '[]', '[]', 'placed', '[]', :now, :now, '[]')"
            ),
            {"now": now},
        )
        conn.execute(
            text(
                "INSERT INTO request_vms (request_id, seq, tier, name, template, host, vcpus,"
                " memory_mib, disk_gb, start_delay_s, state, worker, updated_at)"
                " VALUES (7, 0, 'web', 't-r7-1', 't', 'h1', 1, 1024, 1.0, 10, 'claimed', '',"
                " :now)"
            ),
            {"now": now},
        )
    db.migrate()
    assert "start_delay_s" not in _columns(db, "request_vms")
    with db.engine.connect() as conn:
        names = conn.execute(text("SELECT name, tier FROM request_vms")).all()
    assert [tuple(r) for r in names] == [("t-r7-1", "web")]
    _alembic(db, "downgrade", "2100")
    with db.engine.connect() as conn:
        delays = conn.execute(text("SELECT start_delay_s FROM request_vms")).scalars().all()
    assert delays == [0.0]
    db.migrate()
