"""A file of hosts to register at once (``corral hosts import``): CSV, JSON or YAML.

CSV has a header row with ``name`` and ``uri`` (``username`` optional); JSON and YAML hold a
list of objects with the same keys. Passwords never come from such a file: a host that needs
one gets it with ``corral hosts add --password-stdin``. Every row is checked before anything is
registered, and every bad row is named with its line, so a file is taken whole or not at all.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from corral.errors import ValidationError
from corral.safeload import excerpt, load_file, read_text

COLUMNS = ("name", "uri", "username")
MAX_HOSTS = 20_000
MAX_ERRORS_SHOWN = 10


@dataclass(frozen=True, slots=True)
class HostEntry:
    name: str
    uri: str
    username: str | None = None
    line: int = 0  # where it was in the file, for errors; 0 when not from a file


def read_hosts_file(path: Path) -> list[HostEntry]:
    if path.suffix.lower() == ".csv":
        return _from_csv(path)
    data = load_file(path, "hosts file")
    if not isinstance(data, list):
        raise ValidationError(
            f"hosts file {path} must hold a list of {{name, uri}} objects, not "
            f"{type(data).__name__}."
        )
    return [_from_mapping(item, i + 1, path) for i, item in enumerate(_bounded(data, path))]


def _bounded(rows: list[Any], path: Path) -> list[Any]:
    if len(rows) > MAX_HOSTS:
        raise ValidationError(
            f"hosts file {path} lists {len(rows):,} hosts; at most {MAX_HOSTS:,} per import."
        )
    return rows


def _from_csv(path: Path) -> list[HostEntry]:
    text = read_text(path, "hosts file", encoding="utf-8-sig")  # a spreadsheet's BOM is fine
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip() for h in reader.fieldnames or []]
    if not {"name", "uri"} <= set(header):
        raise ValidationError(
            f"hosts file {path} needs a header row with the columns name and uri "
            f"(username optional); it has {excerpt(header)}."
        )
    unknown = set(header) - set(COLUMNS)
    if unknown:
        raise ValidationError(
            f"hosts file {path} has the unknown column {sorted(unknown)[0]!r}; "
            f"the columns are {', '.join(COLUMNS)} (passwords are never read from a file)."
        )
    rows = _bounded(list(reader), path)
    for i, row in enumerate(rows):
        if None in row:
            raise ValidationError(
                f"hosts file {path}, entry {i + 2}: more values than the header has columns."
            )
    # Line numbers count the header as line 1 (rows with quoted newlines shift them).
    return [
        _from_mapping({(k or "").strip(): v for k, v in row.items()}, i + 2, path)
        for i, row in enumerate(rows)
    ]


def _from_mapping(item: Any, line: int, path: Path) -> HostEntry:
    where = f"hosts file {path}, entry {line}"
    if not isinstance(item, dict):
        raise ValidationError(
            f"{where}: expected an object with name and uri, got {excerpt(item)}."
        )
    unknown = set(item) - set(COLUMNS)
    if unknown:
        raise ValidationError(
            f"{where}: unknown key {sorted(map(str, unknown))[0]!r}; the keys are "
            f"{', '.join(COLUMNS)} (passwords are never read from a file)."
        )
    name, uri, user = item.get("name"), item.get("uri"), item.get("username")
    for key, value in (("name", name), ("uri", uri)):
        if not isinstance(value, str) or not value.strip():
            raise ValidationError(f"{where}: {key} is missing or empty.")
    if user is not None and not isinstance(user, str):
        raise ValidationError(f"{where}: username must be text.")
    assert isinstance(name, str) and isinstance(uri, str)
    return HostEntry(name.strip(), uri.strip(), (user or "").strip() or None, line)


__all__ = ["MAX_HOSTS", "HostEntry", "read_hosts_file"]
