"""Render a listing as a Rich table, JSON or CSV: every listing takes ``--output``."""

from __future__ import annotations

import dataclasses
import enum
import io
import json
import sys
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from corral.domain import csvsafe


class OutputFormat(enum.StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


OutputOption = typer.Option(
    OutputFormat.table, "--output", "-o", help="table, json or csv", case_sensitive=False
)


def record(obj: Any) -> dict[str, Any]:
    """A service's typed result (a dataclass) or a mapping, as one row of named fields."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
    return dict(obj)


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return record(value)
    if isinstance(value, Mapping) and not isinstance(value, dict):
        return dict(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    return value


def _cell(value: Any) -> str:
    value = _plain(value)
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value)
    if isinstance(value, dict):
        return ",".join(f"{k}={v}" for k, v in value.items())
    return str(value)


def _console() -> Console:
    """Wide tables when the output goes to a file or a pipe, the terminal's width otherwise."""
    return Console() if sys.stdout.isatty() else Console(width=200)


def to_json(data: Any, *, line: bool = False) -> str:
    """Indented JSON; ``line=True`` gives one compact line (a stream of JSON lines)."""
    if line:
        return json.dumps(data, default=_plain, ensure_ascii=False, separators=(",", ":"))
    return json.dumps(data, default=_plain, indent=2, ensure_ascii=False)


def emit(
    rows: Sequence[Any],
    output: OutputFormat,
    columns: Sequence[str] | None = None,
    *,
    title: str | None = None,
    console: Console | None = None,
) -> None:
    """Print ``rows`` (mappings or typed records) in the chosen format. JSON keeps every key;
    table and CSV show ``columns``."""
    rows = [record(r) for r in rows]
    console = console or _console()
    cols = list(columns) if columns else (list(rows[0].keys()) if rows else [])
    if output is OutputFormat.json:
        typer.echo(to_json(rows))
    elif output is OutputFormat.csv:
        buf = io.StringIO()
        writer = csvsafe.writer(buf)
        writer.writerow(cols)
        for r in rows:
            writer.writerow([_cell(r.get(c)) for c in cols])
        typer.echo(buf.getvalue(), nl=False)
    else:
        table = Table(title=title, show_lines=False)
        for c in cols:
            table.add_column(c)
        for r in rows:
            table.add_row(*(_cell(r.get(c)) for c in cols))
        console.print(table)


def emit_object(obj: Mapping[str, Any], output: OutputFormat, *, title: str | None = None) -> None:
    """Print one object: JSON as an object, table/CSV as key/value rows."""
    if output is OutputFormat.json:
        typer.echo(to_json(dict(obj)))
        return
    rows = [{"field": k, "value": _cell(v)} for k, v in obj.items()]
    emit(rows, output, ["field", "value"], title=title)
