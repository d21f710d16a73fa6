"""Export the inventory as one CSV or JSON file per table, the way RVTools users expect.

The VM rows are streamed: read in chunks of ``chunk_size`` (a server-side cursor on
PostgreSQL) and written as they come, so memory stays bounded whatever the fleet's size. A CSV
header names every column any row has, in the order first met, which only the last row settles:
tables whose rows do not all share one set of keys (disks, snapshots: device dicts as each
libvirt version stored them) are spooled to a private scratch file first, then written.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import fields
from datetime import date
from pathlib import Path
from typing import IO, Any

import orjson
from sqlalchemy import select

from corral.domain import csvsafe
from corral.inventory.listing import summary_columns, summary_of
from corral.inventory.views import VMSummary, as_row, vm_state
from corral.store import models as m
from corral.store.db import Database

#: The tables of an export, in the order they are written.
TABLES = ("hosts", "vms", "disks", "snapshots", "volumes")
#: Rows of a spooled table written to its scratch file at once.
_SPOOL_BATCH = 2000


def _cell(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return ";".join(str(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True)
    return "" if value is None else value


def _safe_cell(value: Any) -> Any:
    """``neutralise(_cell(value))``, the common cases first: a CSV cell as the safe writer
    writes it, for ``csv.writer`` rows written in batches."""
    kind = type(value)
    if kind is str:
        return csvsafe.neutralise(value) if value.startswith(csvsafe.FORMULA_STARTS) else value
    if kind is int or kind is float or kind is bool:
        return value
    if value is None:
        return ""
    return csvsafe.neutralise(_cell(value))


def _text(value: str | None) -> Any:
    if value is None:
        return ""
    return csvsafe.neutralise(value) if value.startswith(csvsafe.FORMULA_STARTS) else value


def _time(value: date | None) -> str:
    return "" if value is None else value.isoformat()  # digits first: never a formula


#: The vms table's columns: a VM summary's fields, in order.
_VM_COLUMNS = tuple(f.name for f in fields(VMSummary))


def _vm_cells(r: Sequence[Any]) -> list[Any]:
    """The CSV cells of a ``summary_columns`` row: what the safe writer makes of
    ``as_row(summary_of(r))``, without building the summary or its dict (the cost of an
    export of 100,000 VMs). tests/inventory/test_export_stream.py holds the two equal."""
    disk_bytes = r[7] or 0
    return [
        _text(r[0]),
        _text(r[1]),
        _text(r[2]),
        csvsafe.neutralise(vm_state(r[3]).value),
        r[4],
        r[5],
        r[6],
        round(disk_bytes / 1024**3, 1),
        disk_bytes,
        r[8],
        _text(r[9]),
        _text(r[10]),
        _text(r[11]),
        _text(r[12]),
        _text(r[13]),
        _time(r[14]),
        _text(r[15]),
        csvsafe.neutralise(";".join(str(t) for t in r[16] or ())),
        bool(r[17]),
        _time(r[18]),
        _time(r[19]),
        _time(r[20]),
    ]


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

    def add_many(self, rows: Sequence[Any]) -> None:
        """Rows (mappings, or views ``as_row`` makes rows of) encoded at once by orjson, which
        writes what ``add`` writes when the text is ASCII and every value is a JSON type;
        otherwise (``json`` escapes non-ASCII, ``default=str`` takes any value) row by row."""
        if not rows:
            return
        try:
            text = orjson.dumps(rows, option=orjson.OPT_INDENT_2)
        except TypeError:  # a value orjson does not take (an int beyond 64 bits, ...)
            text = b""
        if not text or not text.isascii():
            for row in rows:
                self.add(row if isinstance(row, Mapping) else as_row(row))
            return
        # b"[\n  {...},\n  {...}\n]": the array's items, already indented as ``add`` does
        self.fh.write(("[\n" if self.rows == 0 else ",\n") + text[2:-2].decode("ascii"))
        self.rows += len(rows)

    def close(self) -> None:
        self.fh.write("[]" if self.rows == 0 else "\n]")
        self.fh.close()


class _CsvTable:
    """A CSV table whose header is the union of its rows' keys: rows are spooled as CSV lines
    (their cells in the order of the columns met so far) to a scratch file beside the output,
    then copied under the header; only when a later row brought a new column are the earlier
    rows read back and padded with empty cells."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.spool_path = path.with_suffix(path.suffix + ".spool")
        fd = os.open(self.spool_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        self.spool = open(fd, "w", newline="", encoding="utf-8")  # noqa: SIM115 - see close()
        self.spooled = csv.writer(self.spool, lineterminator="\n")  # cells made safe first
        self.cols: dict[str, None] = {}
        self.rows = 0
        self.short = False  # some spooled rows lack columns met after them
        self.batch: list[list[Any]] = []

    def add(self, row: Mapping[str, Any]) -> None:
        if any(k not in self.cols for k in row):
            self.cols.update(dict.fromkeys(row))
            self.short = self.short or self.rows > 0
        self.batch.append([_safe_cell(row.get(k)) for k in self.cols])
        self.rows += 1
        if len(self.batch) >= _SPOOL_BATCH:
            self._spill()

    def _spill(self) -> None:
        self.spooled.writerows(self.batch)
        self.batch = []

    def close(self) -> None:
        self._spill()
        self.spool.close()
        cols = list(self.cols)
        try:
            with (
                _private(self.path) as fh,
                open(self.spool_path, newline="", encoding="utf-8") as spool,
            ):
                csvsafe.writer(fh).writerow(cols)
                if not self.short:
                    shutil.copyfileobj(spool, fh)
                    return
                writer = csv.writer(fh, lineterminator="\n")
                pad = [""] * len(cols)
                writer.writerows(r + pad[len(r) :] for r in csv.reader(spool))
        finally:
            self.spool_path.unlink(missing_ok=True)


class _FixedCsvTable:
    """A CSV table whose rows all share the first row's keys (VM summaries): written at once."""

    def __init__(self, path: Path) -> None:
        self.fh = _private(path)
        self.writer = csvsafe.writer(self.fh)
        self.raw = csv.writer(self.fh, lineterminator="\n")  # for rows of safe cells
        self.cols: list[str] | None = None

    def add(self, row: Mapping[str, Any]) -> None:
        if self.cols is None:
            self.cols = list(row)
            self.writer.writerow(self.cols)
        elif len(row) != len(self.cols):
            raise ValueError("every row of a fixed CSV table has the same columns")
        self.writer.writerow([_cell(row[k]) for k in self.cols])

    def add_cells(self, rows: list[list[Any]]) -> None:
        """VM summaries' rows already made cells (``_vm_cells``), under their fixed header."""
        if not rows:
            return
        if self.cols is None:
            self.cols = list(_VM_COLUMNS)
            self.writer.writerow(self.cols)
        self.raw.writerows(rows)

    def close(self) -> None:
        if self.cols is None:
            self.writer.writerow([])
        self.fh.close()


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


def _add_devices(
    disks: _Table, snaps: _Table, devices: Iterable[tuple[list[Any], list[Any]]]
) -> None:
    """Each VM's disk and snapshot rows, into their tables (a JSON table takes them at once)."""
    if isinstance(disks, _JsonTable) and isinstance(snaps, _JsonTable):
        all_disks: list[Any] = []
        all_snaps: list[Any] = []
        for d, sn in devices:
            all_disks += d
            all_snaps += sn
        disks.add_many(all_disks)
        snaps.add_many(all_snaps)
        return
    for d, sn in devices:
        for row in d:
            disks.add(row)
        for row in sn:
            snaps.add(row)


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
    # Plain rows, not ORM objects: the listed columns and the two device lists exported.
    stmt = (
        select(*summary_columns(), m.VM.disks, m.VM.snapshots)
        .outerjoin(m.Host, m.VM.host_id == m.Host.id)
        .order_by(m.VM.name, m.VM.uuid)
        .execution_options(yield_per=chunk_size)
    )
    with db.session() as s:
        for part in s.connection().execute(stmt).partitions():
            if isinstance(vms, _FixedCsvTable):
                vms.add_cells([_vm_cells(vm) for vm in part])
            elif isinstance(vms, _JsonTable):
                vms.add_many([summary_of(vm) for vm in part])
            devices = (
                (
                    [{"vm_uuid": vm.uuid, "vm_name": vm.name, **d} for d in vm.disks or ()],
                    [{"vm_uuid": vm.uuid, "vm_name": vm.name, **sn} for sn in vm.snapshots or ()],
                )
                for vm in part
            )
            _add_devices(disks, snaps, devices)
    written += [out.finish("vms"), out.finish("disks"), out.finish("snapshots")]
    written.append(write_rows(out, "volumes", volumes))
    return written
