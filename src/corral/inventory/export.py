"""Export the inventory as one CSV or JSON file per table, the way RVTools users expect.

The VM rows are streamed: read in chunks of ``chunk_size`` (a server-side cursor on
PostgreSQL) and written as they come, so memory stays bounded whatever the fleet's size. A CSV
header names every column any row has, in the order first met, which only the last row settles:
tables whose rows do not all share one set of keys (disks, snapshots: device dicts as each
libvirt version stored them) are spooled to a private scratch file first, then written.
"""

from __future__ import annotations

import json
import marshal
import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any, cast

from sqlalchemy import select

from corral.domain import csvsafe
from corral.inventory.records import vm_summary
from corral.inventory.views import as_row
from corral.store import models as m
from corral.store.db import Database

#: The tables of an export, in the order they are written.
TABLES = ("hosts", "vms", "disks", "snapshots", "volumes")


def _cell(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return ";".join(str(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True)
    return "" if value is None else value


def _private(path: Path) -> IO[str]:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # people's data
    return open(fd, "w", newline="", encoding="utf-8")


class _JsonTable:
    """A JSON array written one row at a time, byte for byte what ``json.dump(rows,
    indent=2, default=str)`` writes (an encoded string never holds a raw line break, so each
    row's lines can be indented by one more level)."""

    def __init__(self, path: Path) -> None:
        self.fh = _private(path)
        self.rows = 0

    def add(self, row: Mapping[str, Any]) -> None:
        text = json.dumps(row, indent=2, default=str).replace("\n", "\n  ")
        self.fh.write(("[\n  " if self.rows == 0 else ",\n  ") + text)
        self.rows += 1

    def close(self) -> None:
        self.fh.write("[]" if self.rows == 0 else "\n]")
        self.fh.close()


class _CsvTable:
    """A CSV table whose header is the union of its rows' keys: rows are spooled (marshal,
    one record each) to a scratch file beside the output, then written under the header."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.spool_path = path.with_suffix(path.suffix + ".spool")
        fd = os.open(self.spool_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        self.spool = open(fd, "wb")  # noqa: SIM115 - open across add() calls; close() shuts it
        self.cols: dict[str, None] = {}

    def add(self, row: Mapping[str, Any]) -> None:
        self.cols.update(dict.fromkeys(row))
        marshal.dump(dict(row), self.spool)

    def close(self) -> None:
        self.spool.close()
        cols = list(self.cols)
        try:
            with _private(self.path) as fh, open(self.spool_path, "rb") as spool:
                writer = csvsafe.writer(fh)
                writer.writerow(cols)
                for r in _spooled(spool):
                    writer.writerow([_cell(r.get(k)) for k in cols])
        finally:
            self.spool_path.unlink(missing_ok=True)


class _FixedCsvTable:
    """A CSV table whose rows all share the first row's keys (VM summaries): written at once."""

    def __init__(self, path: Path) -> None:
        self.fh = _private(path)
        self.writer = csvsafe.writer(self.fh)
        self.cols: list[str] | None = None

    def add(self, row: Mapping[str, Any]) -> None:
        if self.cols is None:
            self.cols = list(row)
            self.writer.writerow(self.cols)
        elif len(row) != len(self.cols):
            raise ValueError("every row of a fixed CSV table has the same columns")
        self.writer.writerow([_cell(row[k]) for k in self.cols])

    def close(self) -> None:
        if self.cols is None:
            self.writer.writerow([])
        self.fh.close()


def _spooled(spool: IO[bytes]) -> Iterator[dict[str, Any]]:
    while True:
        try:
            # Our own scratch file (0600, written just now by this process), never outside input.
            yield cast(dict[str, Any], marshal.load(spool))  # noqa: S302
        except EOFError:
            return


_Table = _JsonTable | _CsvTable | _FixedCsvTable


class _Output:
    """The tables being written into ``folder``: each goes to ``NAME.FMT.part`` and is renamed
    into place once complete, so a reader never sees half a file."""

    def __init__(self, folder: Path, fmt: str) -> None:
        self.folder, self.fmt = folder, fmt
        self.open: dict[str, _Table] = {}

    def table(self, name: str, fixed: bool = False) -> _Table:
        part = self.folder / f"{name}.{self.fmt}.part"
        if self.fmt == "json":
            table: _Table = _JsonTable(part)
        else:
            table = _FixedCsvTable(part) if fixed else _CsvTable(part)
        self.open[name] = table
        return table

    def finish(self, name: str) -> Path:
        self.open.pop(name).close()
        path = self.folder / f"{name}.{self.fmt}"
        (self.folder / f"{name}.{self.fmt}.part").replace(path)
        return path


def write_rows(out: _Output, name: str, rows: Iterable[Mapping[str, Any]]) -> Path:
    table = out.table(name)
    for r in rows:
        table.add(r)
    return out.finish(name)


def export_inventory(
    db: Database,
    folder: Path,
    fmt: str,
    *,
    hosts: Iterable[Mapping[str, Any]],
    volumes: Iterable[Mapping[str, Any]],
    chunk_size: int,
) -> list[Path]:
    """Write hosts, vms (tombstones included), disks, snapshots and volumes into ``folder``;
    the VMs and their devices are read ``chunk_size`` rows at a time."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    out = _Output(folder, fmt)
    written = [write_rows(out, "hosts", hosts)]
    vms, disks, snaps = out.table("vms", fixed=True), out.table("disks"), out.table("snapshots")
    # Plain rows, not ORM objects; every column, device lists included, in this one query.
    stmt = (
        select(m.VM.__table__, m.Host.name.label("host_name"))
        .outerjoin(m.Host, m.VM.host_id == m.Host.id)
        .order_by(m.VM.name, m.VM.uuid)
        .execution_options(yield_per=chunk_size)
    )
    with db.session() as s:
        for part in s.execute(stmt).partitions():
            for vm in part:
                vms.add(as_row(vm_summary(cast(m.VM, vm), vm.host_name)))
                for d in vm.disks or []:
                    disks.add({"vm_uuid": vm.uuid, "vm_name": vm.name, **d})
                for sn in vm.snapshots or []:
                    snaps.add({"vm_uuid": vm.uuid, "vm_name": vm.name, **sn})
    written += [out.finish("vms"), out.finish("disks"), out.finish("snapshots")]
    written.append(write_rows(out, "volumes", volumes))
    return written
