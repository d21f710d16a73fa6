"""CSV from the real CLI never carries a live spreadsheet formula; numbers stay numbers."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from corral.domain.csvsafe import neutralise
from tests.inventory.test_cli import run

HOSTILE = {
    "owner": "=cmd|' /C calc'!A0",
    "purpose": '+HYPERLINK("http://evil.example/","click")',
    "department": "@SUM(A1:A9)",
    "project": "-2+3",
}
NUMBER_TEXT = "-3.5"


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("=1+1", "'=1+1"),
        ("+A1", "'+A1"),
        ("-A1", "'-A1"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("-3.5", "-3.5"),
        ("+7", "+7"),
        ("-1e-3", "-1e-3"),
        ("alice", "alice"),
        ("a=b", "a=b"),
        (-3, -3),
        (-2.5, -2.5),
    ],
)
def test_neutralise(raw: object, shown: object) -> None:
    assert neutralise(raw) == shown


def _set_hostile_metadata(home: Path, nodes: Path) -> None:
    run(home, "hosts", "add", "host-a", f"test://{nodes / 'host-a.xml'}")
    run(home, "sync")
    flags = [f"--{field}={value}" for field, value in HOSTILE.items()]
    run(home, "vm", "set", "old-build", *flags)
    run(home, "vm", "set", "web-01", "--project", NUMBER_TEXT)


def _assert_safe(rows: list[dict[str, str]]) -> None:
    hostile = next(r for r in rows if r.get("name") == "old-build")
    for field, value in HOSTILE.items():
        if field in hostile:
            assert hostile[field] == "'" + value, field
    for row in rows:
        for cell in row.values():
            assert not cell.startswith(("=", "+", "@", "\t", "\r")), row
            assert not cell.startswith("-") or cell == NUMBER_TEXT, row


def test_listings_and_export_neutralise_formulas(nodes: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    _set_hostile_metadata(home, nodes)
    listing = list(csv.DictReader(io.StringIO(run(home, "vms", "-o", "csv").stdout)))
    assert {"owner", "department"} <= set(listing[0])
    _assert_safe(listing)

    shown = csv.DictReader(io.StringIO(run(home, "vm", "show", "old-build", "-o", "csv").stdout))
    fields = {r["field"]: r["value"] for r in shown}
    assert {fields[f] for f in HOSTILE} == {"'" + v for v in HOSTILE.values()}

    out = tmp_path / "export"
    run(home, "export", str(out), "--format", "csv")
    vms = list(csv.DictReader((out / "vms.csv").open(encoding="utf-8")))
    _assert_safe(vms)
    web = next(r for r in vms if r["name"] == "web-01")
    assert web["project"] == NUMBER_TEXT  # the text of a number is not a formula
    events = list(csv.reader(io.StringIO(run(home, "events", "-o", "csv").stdout)))
    assert len(events) > 3
    assert not any(cell.startswith(("=", "+", "-", "@")) for row in events for cell in row)
