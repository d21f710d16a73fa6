"""A drill's report as a file: the JSON and the standalone HTML show the stored run's figures
(planned vs actual host, time to running, what did not come back and why, the timeline),
a hostile VM name stays text, and `corral ha drill-report` writes the same page.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from lxml import html as lhtml

from corral.services import ha_drill_report
from corral.services.ha_drill import DrillReport, report_from_events
from corral.services.ha_live_policy import DrillPolicy
from corral.store import ha_drills
from corral.store.db import Database

KILL = 1_800_000_000.0
HOSTILE = "<script>alert(1)</script><img src=x onerror=alert(2)>"


def events(vms: tuple[str, str, str]) -> list[dict[str, Any]]:
    """The manager's events after the kill: ``vms`` = (recovered, lost, unprotected)."""
    back, lost, unprotected = vms
    rows = [
        (3.5, "host_suspect", "h1", None, "missed 1 check"),
        (31.25, "host_failed", "h1", None, "7 failed checks over 30 s"),
        (36.0, "host_fenced", "h1", None, "power: off"),
        (36.1, "vm_down_unprotected", "h1", unprotected, "not protected"),
        (44.75, "vm_recovered", "h2", back, "started"),
        (45.0, "vm_not_recovered", "h1", lost, "no host has room for 4096 MiB"),
        (45.5, "host_recovered", "h1", None, "1 of 2 VMs running"),
    ]
    return [
        {"id": i, "t": KILL + t, "kind": k, "host": h, "vm": v, "detail": d}
        for i, (t, k, h, v, d) in enumerate(rows, 1)
    ]


def stored_run(db: Database, vms: tuple[str, str, str]) -> tuple[int, DrillReport]:
    report = report_from_events(
        "h1", KILL, sorted(vms), {vms[0]: "h2", vms[1]: "h3"}, events(vms), DrillPolicy()
    )
    run_id = ha_drills.begin(db, "default", "h1", False, datetime.fromtimestamp(KILL, UTC))
    ha_drills.end(db, run_id, "missed", datetime.fromtimestamp(KILL + 46, UTC), report.to_dict())
    return run_id, report


def rows(doc: Any, table: str) -> list[list[str]]:
    return [
        [td.text_content() for td in tr.xpath("td")]
        for tr in doc.xpath(f"//table[@id='{table}']/tbody/tr")
    ]


@pytest.mark.parametrize("db", ["postgresql"], indirect=True)
def test_the_html_and_json_reports_show_the_stored_run(db: Database) -> None:
    run_id, report = stored_run(db, ("app-1", "db-1", "scratch-1"))
    view = ha_drill_report.drill_report(db, run_id)
    assert json.loads(ha_drill_report.to_json(view))["report"] == json.loads(
        json.dumps(report.to_dict())
    )
    doc = lhtml.document_fromstring(ha_drill_report.to_html(view))
    assert doc.xpath("string(//*[@id='detection'])") == "31.2"
    assert doc.xpath("string(//*[@id='fence'])") == "36.0"
    assert rows(doc, "drill-vms") == [
        ["app-1", "h2", "h2", "44.8", "60.0", "met", ""],
        ["db-1", "h3", "not running", "-", "60.0", "missed", "no host has room for 4096 MiB"],
    ]
    assert [li.text_content() for li in doc.xpath("//ul[@id='not-recovered']/li")] == [
        "db-1: no host has room for 4096 MiB"
    ]
    assert [li.text_content() for li in doc.xpath("//ul[@id='unprotected']/li")] == ["scratch-1"]
    timeline = rows(doc, "drill-timeline")
    assert [r[:2] for r in timeline] == [[f"{e.t_s:.1f}", e.kind] for e in report.timeline] and len(
        timeline
    ) == 7
    # standalone: no script, and nothing fetched from anywhere
    assert not doc.xpath("//script | //link | //img | //*[@src] | //iframe")


@pytest.mark.parametrize("db", ["postgresql"], indirect=True)
def test_a_hostile_vm_name_stays_text(db: Database) -> None:
    run_id, _ = stored_run(db, (HOSTILE, "db-1", "x"))
    page = ha_drill_report.to_html(ha_drill_report.drill_report(db, run_id))
    doc = lhtml.document_fromstring(page)
    assert not doc.xpath("//script | //img | //*[@onerror]")
    assert HOSTILE not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert rows(doc, "drill-vms")[0][0] == HOSTILE


@pytest.mark.parametrize("db", ["postgresql"], indirect=True)
def test_the_cli_writes_the_stored_runs_report(db: Database, tmp_path: Path) -> None:
    run_id, _ = stored_run(db, ("app-1", "db-1", "scratch-1"))
    env = {
        **os.environ,
        "CORRAL_HOME": str(tmp_path / "home"),
        "CORRAL_DATABASE_URL": db.url.render_as_string(hide_password=False),
    }
    page, doc = tmp_path / "drill.html", tmp_path / "drill.json"
    done = subprocess.run(
        [sys.executable, "-m", "corral", "ha", "drill-report", str(run_id),
         "--report-html", str(page), "--report-json", str(doc)],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    view = ha_drill_report.drill_report(db, run_id)
    assert page.read_text() == ha_drill_report.to_html(view)
    assert json.loads(doc.read_text())["report"]["vms"][0]["actual"] == "h2"
    missing = subprocess.run(
        [sys.executable, "-m", "corral", "ha", "drill-report", str(run_id + 99)],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert missing.returncode != 0 and "No drill run" in missing.stderr
    assert "Traceback" not in missing.stderr
