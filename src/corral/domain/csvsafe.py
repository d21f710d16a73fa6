"""CSV that a spreadsheet shows and never runs: every CSV Corral writes goes through ``writer``.

A spreadsheet treats a cell that starts with ``=``, ``+``, ``-`` or ``@`` as a formula (and
some treat a leading tab or carriage return the same way), so an owner such as
``=cmd|' /C calc'!A0`` would run when the export is opened. Such a cell gets a single quote in
front, as OWASP advises: the spreadsheet then shows the text as it is. A cell that is the text
of a number (``-3.5``, ``+7``, ``1e-3``) is a number, not a formula, and is written unchanged.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from typing import IO, Any

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def neutralise(value: Any) -> Any:
    """``value`` made safe for a spreadsheet: text that would start a formula gets a quote."""
    if not isinstance(value, str) or not value.startswith(FORMULA_STARTS):
        return value
    if _NUMBER.fullmatch(value):
        return value
    return "'" + value


class SafeWriter:
    """A ``csv.writer`` whose every cell went through ``neutralise``."""

    def __init__(self, fh: IO[str]) -> None:
        self._writer = csv.writer(fh, lineterminator="\n")

    def writerow(self, row: Iterable[Any]) -> None:
        self._writer.writerow([neutralise(cell) for cell in row])

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self.writerow(row)


def writer(fh: IO[str]) -> SafeWriter:
    """The CSV writer for everything Corral writes: one row per line, formulas neutralised."""
    return SafeWriter(fh)
