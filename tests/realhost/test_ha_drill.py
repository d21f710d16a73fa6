"""A drill on real libvirtd hosts: `corral ha drill ha1` fails ha1 through its fence agent
while `corral ha run` leads; the report's figures are those of the manager's event log.

A PRIVATE set of three hosts (haset.py), never the shared one.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from haset import HARig, wait
from lxml import html as lhtml

from corral.store import ha_state


@pytest.mark.parametrize("db", ["postgresql"], indirect=True)
def test_drill_report_matches_the_event_log(ha: HARig) -> None:
    inventory = ha.inventory()
    [guest] = ha.boot()
    name = guest.name
    spec = {"fence": ha.hosts.fence_spec(), "drills": {"allow": ["ha1"], "rto_s": 60}}
    env = ha.run_env(spec)
    with ha.managers(env, 1):
        wait("the manager watching the guest", lambda: ha.running(name))
        planned = ha.planned_target(inventory, name)
        page = ha.tmp_path / "drill.html"
        done = subprocess.run(
            [sys.executable, "-m", "corral", "ha", "drill", "ha1", "-o", "json",
             "--report-html", str(page)],
            env=env, capture_output=True, text=True, timeout=400,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr + done.stdout
        report = json.loads(done.stdout)

        events = [e for e in ha_state.events(ha.db, "default") if e["t"] >= report["killed_at"]]
        t0 = report["killed_at"]

        def since(kind: str, **match: str) -> float:
            e = next(
                e for e in events if e["kind"] == kind and all(e[k] == v for k, v in match.items())
            )
            return round(float(e["t"]) - t0, 3)

        assert report["ended_by"] == "host_recovered"
        assert report["detection_s"] == since("host_failed", host="ha1")
        assert report["fence_s"] == since("host_fenced", host="ha1")
        assert report["detection_s"] >= 4  # declared failed only after the grace period
        assert report["detection_s"] <= report["fence_s"]
        [vm] = report["vms"]
        assert vm["vm"] == name and vm["planned"] == planned and vm["actual"] == planned
        assert vm["restart_s"] == since("vm_recovered", vm=name)
        assert report["fence_s"] <= vm["restart_s"]
        assert vm["rto_met"] == (vm["restart_s"] <= 60) and report["not_recovered"] == []
        doc = lhtml.document_fromstring(page.read_text())  # the file shows the same figures
        cells = [td.text_content() for td in doc.xpath("//table[@id='drill-vms']/tbody/tr/td")]
        assert cells[:4] == [name, planned, planned, f"{vm['restart_s']:.1f}"]
        assert doc.xpath("string(//*[@id='fence'])") == f"{report['fence_s']:.1f}"
        kinds = doc.xpath("//table[@id='drill-timeline']/tbody/tr/td[2]/text()")
        assert "host_failed" in kinds and "vm_recovered" in kinds
        assert ha.hosts.where(guest.uuid, among=(1, 2)) == [planned]
