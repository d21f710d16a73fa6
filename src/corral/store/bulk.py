"""Many new rows at once: PostgreSQL's COPY, or one executemany on SQLite.

Inside the session's own transaction, so a bulk insert commits or rolls back with the rest of
the work. Every row must carry the same keys (the columns written).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any, cast

from sqlalchemy import JSON, Table, TypeDecorator, insert
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session

from corral.store.models import Base

_CHUNK = 2000


def bulk_insert(s: Session, model: type[Base], rows: Sequence[dict[str, Any]]) -> None:
    if not rows:
        return
    if s.get_bind().dialect.name == "postgresql":
        _copy(s, model, rows)
        return
    for i in range(0, len(rows), _CHUNK):
        s.execute(insert(model), list(rows[i : i + _CHUNK]))


def _copy(s: Session, model: type[Base], rows: Sequence[dict[str, Any]]) -> None:
    table = cast(Table, model.__table__)
    names = list(rows[0])
    rows = _with_defaults(table, names, rows)
    names = list(rows[0])
    dialect = s.get_bind().dialect
    convert = [_converter(table.c[n].type, dialect) for n in names]
    conn = s.connection().connection.driver_connection
    # Identifiers come from the model's own table, never from the rows' values.
    quote = dialect.identifier_preparer.quote
    columns = ", ".join(quote(table.c[n].name) for n in names)
    sql = f"COPY {quote(table.name)} ({columns}) FROM STDIN"
    with conn.cursor() as cur, cur.copy(sql) as copy:  # type: ignore[union-attr]
        for row in rows:
            copy.write_row(tuple(f(row[n]) for f, n in zip(convert, names, strict=True)))


def _with_defaults(
    table: Table, names: list[str], rows: Sequence[dict[str, Any]]
) -> Sequence[dict[str, Any]]:
    """COPY skips the model's Python-side defaults (``default=""``, ``default=list``), which an
    INSERT would apply: add them for the columns the rows leave out."""
    missing = [c for c in table.columns if c.key not in names and c.default is not None]
    if not missing:
        return rows
    out = []
    for row in rows:
        extra = {}
        for c in missing:
            default: Any = c.default
            extra[c.key] = default.arg(None) if default.is_callable else default.arg
        out.append({**row, **extra})
    return out


def _converter(type_: Any, dialect: Dialect) -> Callable[[Any], Any]:
    if isinstance(type_, TypeDecorator):
        bind = type_.process_bind_param
        return lambda v: bind(v, dialect)
    if isinstance(type_, JSON):
        return lambda v: None if v is None else json.dumps(v)
    return lambda v: v


__all__ = ["bulk_insert"]
