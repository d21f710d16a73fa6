"""Restoring a point as a new VM onto a host the user chooses: the page offers the hosts the
placement engine finds able to take the VM now, the job restores onto the chosen one, and a
host outside that list is refused on the server with nothing written.

Real app on the demo fleet (libvirt test-driver hosts), on SQLite and PostgreSQL; the real
restorer (qemu-img) as in test_backup_pages.py.
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from lxml import html as lhtml
from sqlalchemy import select

from corral.services import planning
from corral.services.fleet import live_fleet
from corral.store import models as m
from tests.web.conftest import Demo
from tests.web.test_backup_pages import counts, finished, point_of
from tests.web.test_request_pages import csrf, sign_in, user

JOB_URL = re.compile(r"^/jobs/([0-9a-f]{32})$")


def offered(text: str) -> list[str]:
    doc = lhtml.document_fromstring(text)
    return [str(v) for v in doc.xpath("//select[@id='target-host']/option/@value")]


def test_a_point_is_restored_onto_the_chosen_host(
    client: TestClient, db_demo: Demo, running_vm: dict[str, Any], tmp_path: Path
) -> None:
    point = point_of(db_demo, running_vm, tmp_path)
    sign_in(client, user(db_demo, "operator"))
    hosts = offered(client.get(f"/backups/points/{point.id}").text)
    able = planning.able_hosts(
        live_fleet(db_demo.inv).fleet, running_vm["vcpus"], running_vm["memory_mib"]
    )
    assert sorted(hosts) == sorted(able) and hosts[0] == point.host
    others = [h for h in hosts if h != point.host]
    assert others, "the demo has three hosts with room for a small VM"
    name = f"web-{uuid.uuid4().hex[:6]}"
    form = {"point": point.id, "mode": "new", "as_name": name, "host": others[0]}
    r = client.post(
        "/backups/restore",
        data={"csrf": csrf(client, "/backups"), **form},
        follow_redirects=False,
    )
    assert r.status_code == 303
    found = JOB_URL.match(r.headers["location"])
    assert found, r.headers["location"]
    job = finished(db_demo, found.group(1))
    assert job.state.value == "succeeded", job.error
    assert job.result is not None and job.result["host"] == others[0]
    with db_demo.inv.db.session() as s:
        row = s.scalars(
            select(m.BackupRestoreRow).where(m.BackupRestoreRow.point_id == point.id)
        ).one()
        assert (row.host, row.vm_name) == (others[0], name)


def test_a_host_outside_the_list_is_refused_and_nothing_is_written(
    client: TestClient, db_demo: Demo, running_vm: dict[str, Any], tmp_path: Path
) -> None:
    point = point_of(db_demo, running_vm, tmp_path)
    sign_in(client, user(db_demo, "operator"))
    token = csrf(client, "/backups")
    before = counts(db_demo)
    for host in ("no-such-host", "../p1", "h" * 300):
        form = {"csrf": token, "point": point.id, "mode": "new", "as_name": "web-x", "host": host}
        r = client.post("/backups/restore", data=form)
        assert r.status_code == 422, (host, r.status_code)
        assert "cannot take" in r.text and "Traceback" not in r.text
    assert counts(db_demo) == before
