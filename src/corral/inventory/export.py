"""Export the inventory as one CSV or JSON file per table, the way RVTools users expect."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from corral.domain import csvsafe


def _cell(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return ";".join(str(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True)
    return "" if value is None else value


def write_tables(
    folder: Path, tables: Mapping[str, Sequence[Mapping[str, Any]]], fmt: str
) -> list[Path]:
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    written = []
    for name, rows in tables.items():
        path = folder / f"{name}.{fmt}"
        tmp = path.with_suffix(path.suffix + ".part")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # people's data
        with open(fd, "w", newline="", encoding="utf-8") as fh:
            if fmt == "json":
                json.dump(list(rows), fh, indent=2, default=str)
            else:
                cols: list[str] = []
                for r in rows:
                    cols.extend(k for k in r if k not in cols)
                writer = csvsafe.writer(fh)
                writer.writerow(cols)
                for r in rows:
                    writer.writerow([_cell(r.get(k)) for k in cols])
        tmp.replace(path)
        written.append(path)
    return written
