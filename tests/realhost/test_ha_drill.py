"""A drill on real libvirtd hosts: `corral ha drill ha1` fails ha1 through its fence agent
while `corral ha run` leads; the report's figures are those of the manager's event log.

A PRIVATE set of three hosts (see test_ha_live.py), never the shared one.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import uuid as uuidlib
from pathlib import Path

import libvirt
import pytest
import yaml
from cryptography.fernet import Fernet
from guest import RealhostEnv, guest_xml, make_disk, wait_for_console
from lxml import html as lhtml
from test_ha_live import HOSTS, PrivateHosts, _fence_spec, _wait, private_hosts  # noqa: F401

from corral.inventory.service import Inventory
from corral.security.secrets import SecretBox
from corral.services import ha_live_views
from corral.store import ha_state
from corral.store.db import Database


@pytest.mark.parametrize("db", ["postgresql"], indirect=True)
def test_drill_report_matches_the_event_log(
    private_hosts: PrivateHosts,  # noqa: F811
    realhost_env: RealhostEnv,
    db: Database,
    tmp_path: Path,
) -> None:
    inventory = Inventory(db, SecretBox(Fernet.generate_key()))
    for name, uri in zip(HOSTS, private_hosts.uris, strict=True):
        inventory.add_host(name, uri)
    name = f"corral-hadrill-{uuidlib.uuid4().hex[:8]}"
    console = tmp_path / f"{name}.console.log"
    xml = guest_xml(
        name, kernel=realhost_env.kernel, initrd=realhost_env.initrd,
        disk_path=make_disk(tmp_path / f"{name}.qcow2", 16), console_log=console,
        disk_cache="none",
    )  # fmt: skip
    dom = libvirt.open(private_hosts.uris[0]).defineXML(xml)
    dom.create()
    wait_for_console(console, timeout_s=120)
    policy = tmp_path / "ha.yaml"
    spec = {"fence": _fence_spec(private_hosts), "drills": {"allow": ["ha1"], "rto_s": 60}}
    policy.write_text(yaml.safe_dump(spec))
    env = {
        **os.environ,
        "CORRAL_HOME": str(tmp_path / "home"),
        "CORRAL_DATABASE_URL": str(db.url.render_as_string(hide_password=False)),
        "CORRAL_HA_POLICY": str(policy),
        "CORRAL_HA_GRACE": "4",
        "CORRAL_HA_CHECK_INTERVAL": "1",
    }
    log = (tmp_path / "manager.log").open("wb")
    manager = subprocess.Popen(
        [sys.executable, "-m", "corral", "ha", "run"], env=env, stdout=log, stderr=log
    )
    try:
        _wait(
            "the manager watching the guest",
            lambda: any(
                v.name == name and v.state == "running" for v in ha_live_views.status(db).vms
            ),
        )
        planned = next(
            e.target for e in ha_live_views.plan(db, inventory).entries
            if e.failed_host == "ha1" and e.vm == name
        )  # fmt: skip
        page = tmp_path / "drill.html"
        done = subprocess.run(
            [sys.executable, "-m", "corral", "ha", "drill", "ha1", "-o", "json",
             "--report-html", str(page)],
            env=env, capture_output=True, text=True, timeout=400,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr + done.stdout
        report = json.loads(done.stdout)

        events = [e for e in ha_state.events(db, "default") if e["t"] >= report["killed_at"]]
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
        target = libvirt.open(private_hosts.uris[HOSTS.index(planned)])
        assert target.lookupByUUIDString(dom.UUIDString()).isActive()
    finally:
        manager.kill()
        manager.wait()
        log.close()
        for uri in private_hosts.uris[1:]:
            with contextlib.suppress(libvirt.libvirtError):
                conn = libvirt.open(uri)
                for d in conn.listAllDomains():
                    if d.UUIDString() == dom.UUIDString():
                        if d.isActive():
                            d.destroy()
                        d.undefine()
