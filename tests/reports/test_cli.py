"""``corral sprawl report --html`` and the demo's HTML report, in a real subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from lxml import html as lhtml

CORRAL = [sys.executable, "-m", "corral"]


def run(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CORRAL_HOME": str(home)}
    env.pop("CORRAL_DATABASE_URL", None)
    env.pop("CORRAL_METRICS_URL", None)
    return subprocess.run(
        [*CORRAL, *args], capture_output=True, text=True, env=env, timeout=300, check=False
    )


def test_demo_and_report_write_the_html(tmp_path: Path) -> None:
    home = tmp_path / "home"
    demo = run(
        home,
        "demo",
        "--no-serve",
        "--vms",
        "20",
        "--hosts",
        "2",
        "--history-days",
        "0",
        "-o",
        "json",
    )
    assert demo.returncode == 0, demo.stderr
    info = json.loads(demo.stdout)
    written = Path(info["html_report"])
    assert written == (home / "sprawl-report.html").resolve() and written.is_file()
    demo_doc = lhtml.document_fromstring(written.read_text("utf-8"))
    tiles = {
        t.get("data-key"): float(t.get("data-value"))
        for t in demo_doc.xpath("//div[@class='tile']")
    }
    assert tiles["waste_yearly"] == info["sprawl"]["waste_yearly"]

    out = tmp_path / "report.html"
    report = run(home, "sprawl", "report", "--html", str(out), "-o", "json")
    assert report.returncode == 0, report.stderr
    doc = json.loads(report.stdout)  # the path message went to stderr, JSON stays clean
    assert f"HTML report written to {out.resolve()}" in report.stderr
    assert [s["number"] for s in doc["scorecard"]] == [1, 2, 3, 4, 5]
    assert {s["status"] for s in doc["scorecard"]} <= {"ok", "warning", "alert", "cannot-tell"}
    assert all(s["based_on"] and s["figures"] for s in doc["scorecard"])
    assert doc["waste_over_time"][-1]["vms"] == doc["summary"]["vms"]
    page = lhtml.document_fromstring(out.read_text("utf-8"))
    statuses = [a.get("data-status") for a in page.xpath("//section[@id='scorecard']//article")]
    assert statuses == [s["status"] for s in doc["scorecard"]]

    table = run(home, "sprawl", "report", "--html", str(out))
    assert table.returncode == 0, table.stderr
    assert f"HTML report written to {out.resolve()}" in table.stdout
    assert "Lack of policy" in table.stdout


def test_report_into_a_missing_folder_is_one_sentence(tmp_path: Path) -> None:
    proc = run(tmp_path / "home", "sprawl", "report", "--html", str(tmp_path / "no" / "r.html"))
    assert proc.returncode == 2
    assert "does not exist; create it." in proc.stderr
    assert "Traceback" not in proc.stderr
