"""Backups and restores started from the browser, over HTTP: an operator backs a VM up now and
restores a point as a new VM, each as a job of the REST API's kind that the page follows; every
refusal (a role without ``fleet.operate``, a forged form token, an in-place restore not
confirmed, a bad name, an unknown point) is decided on the server with nothing written.

Real app (FastAPI's TestClient) on the demo fleet (libvirt test-driver hosts), on SQLite and
PostgreSQL; the restore point is a sealed one with a real qcow2 disk, restored by the real
restorer (qemu-img) onto the VM's test-driver host. The flow in Chromium is in
test_browser_backups.py.
"""

from __future__ import annotations

import re
import subprocess
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from lxml import etree
from sqlalchemy import func, select

from corral.domain.backup import Manifest
from corral.services.backup_exec import catalog_row, repository
from corral.services.jobs import FINISHED, Job, JobService
from corral.store import models as m
from tests.web.conftest import Demo
from tests.web.test_request_pages import csrf, departments, sign_in, user

JOB_URL = re.compile(r"^/jobs/([0-9a-f]{32})$")


def point_of(db_demo: Demo, vm: dict[str, Any], disk_dir: Path) -> Manifest:
    """A sealed full point of ``vm``: a real 16 MiB qcow2 disk and a domain naming it."""
    repo = repository(db_demo.app.state.settings)
    at = datetime.now(UTC).replace(microsecond=0)
    pid = f"{at:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"
    folder = repo.begin(vm["uuid"], pid)
    subprocess.run(
        ["qemu-img", "create", "-q", "-f", "qcow2", str(folder / "vda.qcow2"), "16M"], check=True
    )
    dom = etree.Element("domain", type="test")
    etree.SubElement(dom, "name").text = vm["name"]
    etree.SubElement(dom, "uuid").text = vm["uuid"]
    etree.SubElement(dom, "memory", unit="MiB").text = "128"
    etree.SubElement(etree.SubElement(dom, "os"), "type").text = "hvm"
    disk = etree.SubElement(etree.SubElement(dom, "devices"), "disk", type="file", device="disk")
    etree.SubElement(disk, "driver", name="qemu", type="qcow2")
    etree.SubElement(disk, "source", file=str(disk_dir / f"{vm['name']}.qcow2"))
    etree.SubElement(disk, "target", dev="vda", bus="virtio")
    (folder / "domain.xml").write_bytes(etree.tostring(dom))
    manifest = Manifest(
        pid, vm["uuid"], vm["name"], vm["host"], "full", None, f"corral-{pid}", at,
        (repo.describe(folder, "vda.qcow2", "vda"), repo.describe(folder, "domain.xml")),
    )  # fmt: skip
    repo.commit(folder, manifest)
    with db_demo.inv.db.session() as s:
        s.add(catalog_row(manifest))
    return manifest


def finished(db_demo: Demo, job_id: str, timeout_s: float = 60) -> Job:
    jobs: JobService = db_demo.app.state.jobs
    deadline = time.monotonic() + timeout_s
    while (job := jobs.get(job_id)).state not in FINISHED:
        assert time.monotonic() < deadline, f"job {job_id} still {job.state}"
        time.sleep(0.1)
    return job


def counts(db_demo: Demo) -> tuple[int, ...]:
    """Rows of every table a backup or restore from a page writes."""
    with db_demo.inv.db.session() as s:
        return tuple(
            int(s.scalar(select(func.count()).select_from(t)) or 0)
            for t in (m.Job, m.BackupRestoreRow, m.BackupPointRow, m.AuditEntry)
        )


def test_an_operator_backs_up_a_vm_now_and_follows_the_job(
    client: TestClient, db_demo: Demo, running_vm: dict[str, Any]
) -> None:
    operator = user(db_demo, "operator")
    sign_in(client, operator)
    vm_page = client.get(f"/vms/{running_vm['uuid']}").text
    assert 'action="/backups/run"' in vm_page and f"Back up {running_vm['name']} now" in vm_page
    token = csrf(client, "/backups")
    r = client.post(
        "/backups/run", data={"csrf": token, "vm": running_vm["name"]}, follow_redirects=False
    )
    assert r.status_code == 303
    found = JOB_URL.match(r.headers["location"])
    assert found, r.headers["location"]
    job = finished(db_demo, found.group(1))
    assert job.kind == "backup.run" and job.submitted_by == operator
    with db_demo.inv.db.session() as s:
        row = s.get(m.Job, job.id)
        assert row is not None and row.params["vm"] == running_vm["uuid"]
        audited = s.execute(  # the job's row names the operator, from the web page
            select(m.AuditEntry.actor, m.AuditEntry.origin).where(
                m.AuditEntry.target == f"job:{job.id}", m.AuditEntry.action == "create"
            )
        ).all()
        assert [(a, o.split()[0]) for a, o in audited] == [(operator, "web")], audited
    page = client.get(r.headers["location"])
    assert page.status_code == 200 and f">{job.state.value}<" in page.text
    assert 'http-equiv="refresh"' not in page.text  # done: the page stops reloading
    if job.error is not None:  # the test driver has no backup API: one sentence, no traceback
        assert job.error.detail in page.text and "Traceback" not in page.text
    else:
        assert running_vm["name"] in page.text


def test_an_operator_restores_a_point_as_a_new_vm(
    client: TestClient, db_demo: Demo, running_vm: dict[str, Any], tmp_path: Path
) -> None:
    point = point_of(db_demo, running_vm, tmp_path)
    operator = user(db_demo, "operator")
    sign_in(client, operator)
    listing = client.get("/backups").text
    assert f'href="/backups/points/{point.id}"' in listing
    assert f'href="/backups/points/{point.id}"' in client.get(f"/vms/{running_vm['uuid']}").text
    page = client.get(f"/backups/points/{point.id}").text
    assert page.count('action="/backups/restore"') == 2  # as a new VM; in place
    name = f"web-{uuid.uuid4().hex[:6]}"
    before = counts(db_demo)
    r = client.post(
        "/backups/restore",
        data={"csrf": csrf(client, "/backups"), "point": point.id, "mode": "new", "as_name": name},
        follow_redirects=False,
    )
    assert r.status_code == 303
    found = JOB_URL.match(r.headers["location"])
    assert found
    job = finished(db_demo, found.group(1))
    assert job.state.value == "succeeded", job.error
    assert job.result is not None and job.result["vm_name"] == name
    assert job.result["mode"] == "new" and job.result["vm_uuid"] != running_vm["uuid"]
    assert Path(job.result["disks"][0]) == tmp_path / f"{name}-vda.qcow2"
    assert Path(job.result["disks"][0]).is_file()
    with db_demo.inv.db.session() as s:
        restored = s.scalars(
            select(m.BackupRestoreRow).where(m.BackupRestoreRow.point_id == point.id)
        ).all()
        assert [(r.mode, r.vm_name) for r in restored] == [("new", name)]
    after = counts(db_demo)
    assert (after[0] - before[0], after[1] - before[1]) == (1, 1)  # one job, one restore
    shown = client.get(r.headers["location"]).text
    assert name in shown and "as a new VM" in shown


def test_backup_and_restore_refusals_change_nothing(
    client: TestClient, db_demo: Demo, running_vm: dict[str, Any], tmp_path: Path
) -> None:
    point = point_of(db_demo, running_vm, tmp_path)
    mine, _ = departments(db_demo)
    run = {"vm": running_vm["uuid"]}
    new = {"point": point.id, "mode": "new", "as_name": "web-copy"}
    in_place = {"point": point.id, "mode": "in-place"}
    before = counts(db_demo)
    for role, department in (("auditor", None), ("requester", mine), ("approver", mine)):
        sign_in(client, user(db_demo, role, department))
        token = csrf(client, "/requests" if role != "auditor" else "/backups")
        if role == "auditor":  # may read the points, not act on them
            assert 'action="/backups/run"' not in client.get("/backups").text
            page = client.get(f"/backups/points/{point.id}")
            assert page.status_code == 200 and "/backups/restore" not in page.text
        for path, form in (("/backups/run", run), ("/backups/restore", new)):
            r = client.post(path, data={"csrf": token, **form})
            assert r.status_code == 403, (role, path, r.status_code)
    sign_in(client, user(db_demo, "operator"))
    token = csrf(client, "/backups")
    refusals = (
        ({"csrf": "forged", **run}, "/backups/run", 403),
        ({"csrf": "forged", **new}, "/backups/restore", 403),
        ({"csrf": token, **in_place}, "/backups/restore", 422),  # not confirmed
        ({"csrf": token, **in_place, "confirm": "no"}, "/backups/restore", 422),
        ({"csrf": token, **new, "as_name": "../etc/x"}, "/backups/restore", 422),
        ({"csrf": token, **new, "as_name": ""}, "/backups/restore", 422),
        ({"csrf": token, **new, "mode": "elsewhere"}, "/backups/restore", 422),
        ({"csrf": token, **new, "point": "20990101T000000-000000"}, "/backups/restore", 404),
        ({"csrf": token, **new, "point": "../../etc"}, "/backups/restore", 422),
        ({"csrf": token, "vm": "no-such-vm"}, "/backups/run", 404),
    )
    for form, path, status in refusals:
        r = client.post(path, data=form)
        assert r.status_code == status, (form, r.status_code)
        assert "Traceback" not in r.text
    assert 'role="alert"' in client.post("/backups/restore", data=refusals[2][0]).text
    assert counts(db_demo) == before


def test_the_job_page_answers_not_found_to_those_who_may_not_see_the_job(
    client: TestClient, db_demo: Demo
) -> None:
    mine, _ = departments(db_demo)
    sign_in(client, user(db_demo, "requester", mine))
    assert client.get("/jobs/" + "0" * 32).status_code == 404
    sign_in(client, user(db_demo, "auditor"))
    assert client.get("/jobs/" + "0" * 32).status_code == 404
    assert client.get("/jobs/" + "x" * 100).status_code == 404


def test_the_backup_page_lists_restore_tests_running_and_ended(
    client: TestClient, db_demo: Demo, running_vm: dict[str, Any], tmp_path: Path
) -> None:
    """A restore test run by the service (as the backup loop runs it) and one claimed, its
    process at work, are both on /backups for whoever reads the catalog."""
    from markupsafe import escape

    from corral.engines.backup import Policy
    from corral.engines.backup.policy import RestoreTesting
    from corral.services.backup_restore_test import RestoreTester

    point = point_of(db_demo, running_vm, tmp_path)
    policy = Policy(restore_test=RestoreTesting(boot_timeout_s=5, settle_s=0))
    tester = RestoreTester.from_settings(db_demo.app.state.settings, db_demo.inv.db, policy)
    [ended] = tester.run(point=point.id, disk_dir=tmp_path)
    tester._claim(point, running_vm["host"], "corral-rt-5ee000", tmp_path)  # at work now
    sign_in(client, user(db_demo, "auditor"))
    page = client.get("/backups").text
    section = page.split('id="restore-tests"')[1].split('id="points"')[0]
    rows = section.split("<tr>")[2:]  # past the header: newest first
    assert len(rows) == 2 and all(point.id in r for r in rows)
    assert ">running<" in rows[0]
    assert (">booted<" if ended.ok else ">failed<") in rows[1]
    assert str(escape(ended.detail)) in rows[1]
