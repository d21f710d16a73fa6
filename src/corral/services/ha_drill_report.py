"""A drill's report, as a file to keep or send: JSON and a standalone HTML page.

The report is the one the drill stored with its run (services.ha_drill), read back here, so
the file, the web page (/ha/drills/ID) and ``corral ha drill --report-html`` all show the
same figures. The HTML is rendered from a template with autoescaping on (a VM's name is
text, never markup) and carries its style inline and nothing else: it opens anywhere,
without Corral and without a network.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

from corral.config import ensure_private_dir
from corral.errors import NotFoundError
from corral.services.ha_drill import DrillReport
from corral.services.ha_live import DEFAULT_NAME
from corral.store import ha_drills
from corral.store.db import Database

#: The report's templates; the dashboard's loader reads this folder too, so its drill page
#: uses the same ``_drill_report.html`` macro as the standalone page.
TEMPLATE_DIR = Path(__file__).parent / "templates"
_TEMPLATES = Environment(
    loader=FileSystemLoader(TEMPLATE_DIR),
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
)


@dataclass(frozen=True)
class DrillRunReport:
    run: ha_drills.DrillRun
    #: None while the drill runs, or when it could not run (``run.detail`` says why)
    report: DrillReport | None

    def to_dict(self) -> dict[str, Any]:
        run = {**asdict(self.run), "started_at": self.run.started_at.isoformat()}
        run["ended_at"] = self.run.ended_at.isoformat() if self.run.ended_at else None
        return {"run": run, "report": self.report.to_dict() if self.report else None}


@dataclass(frozen=True)
class DrillPage:
    runs: tuple[ha_drills.DrillRun, ...]
    total: int
    page: int
    pages: int


def drill_page(
    db: Database, page: int = 1, per_page: int = 25, name: str = DEFAULT_NAME
) -> DrillPage:
    """One page of the drill runs, newest first (``page`` counts from 1)."""
    total = ha_drills.count(db, name)
    pages = max(1, math.ceil(total / per_page))
    page = min(max(1, page), pages)
    runs = ha_drills.runs(db, name, limit=per_page, offset=(page - 1) * per_page)
    return DrillPage(tuple(runs), total, page, pages)


def drill_report(db: Database, run_id: int, name: str = DEFAULT_NAME) -> DrillRunReport:
    """The stored run ``run_id`` of manager ``name`` with its report."""
    found = ha_drills.run(db, name, run_id)
    if found is None:
        raise NotFoundError(f"No drill run {run_id}; 'corral ha drills' lists them.")
    run, stored = found
    return DrillRunReport(run, DrillReport.from_dict(stored) if stored else None)


def to_json(view: DrillRunReport) -> str:
    return json.dumps(view.to_dict(), indent=2, sort_keys=True)


def to_html(view: DrillRunReport) -> str:
    """The standalone page: no script, no external asset, every value escaped."""
    template = _TEMPLATES.get_template("drill_report.html")
    return template.render(view=view, r=view.report, secs=seconds, stamp=_stamp)


def _stamp(at: datetime) -> str:
    return at.isoformat(timespec="seconds")


def seconds(value: float | None) -> str:
    """A duration in the report: one decimal, or a dash when it never happened."""
    return "-" if value is None else f"{value:.1f}"


def write(view: DrillRunReport, *, html: Path | None = None, json_file: Path | None = None) -> None:
    if html is not None:
        html.write_text(to_html(view), encoding="utf-8")
    if json_file is not None:
        json_file.write_text(to_json(view) + "\n", encoding="utf-8")


def write_to_folder(
    db: Database, run_id: int, folder: Path, name: str = DEFAULT_NAME
) -> tuple[Path, Path]:
    """Run ``run_id``'s report as ``drill-ID.html`` and ``drill-ID.json`` in ``folder``
    (created owner-only): where a scheduled drill, with nobody at a terminal, leaves it."""
    ensure_private_dir(folder)
    html, json_file = folder / f"drill-{run_id}.html", folder / f"drill-{run_id}.json"
    write(drill_report(db, run_id, name), html=html, json_file=json_file)
    return html, json_file
