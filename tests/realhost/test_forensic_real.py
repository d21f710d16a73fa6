"""Forensic snapshots, isolation, custody, the signed IDS webhook and rollback on real hosts.

A QEMU/TCG guest with a qcow2 disk holding known patterns and a NIC on the hosts' ``corral``
network is snapshotted while it runs: its memory and disk become sealed, read-only evidence
with SHA-256 hashes and an audited custody record; its NIC moves to an isolated network made
for the test (a bridge of its own, handed to libvirt in bridge mode), checked in the live XML
and on the bridge itself. A tampered evidence file is found by ``verify``. The webhook is
called over real HTTP (uvicorn, httpx); a rollback restores a point the backup executor took.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import libvirt
import pytest
import uvicorn
from guest import GuestFactory, wait_for_console
from lxml import etree

from corral.api.app import create_app
from corral.config import Secret, Settings
from corral.engines.backup import Policy
from corral.errors import ConflictError
from corral.inventory.service import Inventory
from corral.security.signed_webhook import SIGNATURE_HEADER, sign
from corral.security.token_store import TokenStore
from corral.services.audit import Actor, AuditLog, acting_as
from corral.services.backup_exec import Executor, HostOpener
from corral.services.forensic import ForensicService
from corral.services.users import UserService
from corral.store import models as m
from corral.store.backup_repo import Repository
from corral.store.evidence import EvidenceStore

pytestmark = pytest.mark.parametrize("db", ["postgresql"], indirect=True)

PATTERNS = ((0xAB, 0, 8), (0x5C, 40, 8))
SECRET = "ids-shared-secret-" + uuid.uuid4().hex
TESTER = Actor("forensic-test", "admin", "test")


def _qemu_io(path: Path, command: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["qemu-io", *extra, "-f", "qcow2", "-c", command, str(path)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def _holds(image: Path, byte: int, offset: int, length: int) -> bool:
    done = _qemu_io(image, f"read -P {byte} {offset}M {length}M", "-r", "-U")
    return done.returncode == 0 and "verification failed" not in done.stdout + done.stderr


def _disk(workdir: Path) -> Path:
    disk = workdir / f"fx-{uuid.uuid4().hex[:8]}.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(disk), "64M"], check=True)
    for byte, offset, length in PATTERNS:
        assert _qemu_io(disk, f"write -P {byte} {offset}M {length}M").returncode == 0
    return disk


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def real_inventory(inventory: Inventory, realhost_uris: list[str]) -> Inventory:
    for i, uri in enumerate(realhost_uris[:2], 1):
        inventory.add_host(f"fx-real-{i}-{uuid.uuid4().hex[:4]}", uri)
    return inventory


@pytest.fixture
def isolated(libvirt_conns: list[Any]) -> Iterator[tuple[str, str]]:
    """(network, bridge): a new bridge with no address and no uplink, as a libvirt network
    on host 1; removed afterwards."""
    tag = uuid.uuid4().hex[:8]
    bridge, name = f"crlfx{tag}", f"forensic-iso-{tag}"
    subprocess.run(["ip", "link", "add", bridge, "type", "bridge"], check=True)
    subprocess.run(["ip", "link", "set", bridge, "up"], check=True)
    root = etree.Element("network")
    etree.SubElement(root, "name").text = name
    etree.SubElement(root, "forward", mode="bridge")
    etree.SubElement(root, "bridge", name=bridge)
    net = libvirt_conns[0].networkCreateXML(etree.tostring(root, encoding="unicode"))
    try:
        yield name, bridge
    finally:
        net.destroy()
        subprocess.run(["ip", "link", "del", bridge], check=False)


@pytest.fixture
def service(real_inventory: Inventory, tmp_path: Path) -> ForensicService:
    return ForensicService(
        real_inventory.db, EvidenceStore(tmp_path / "forensic"),
        Repository(tmp_path / "repo"), HostOpener.of(real_inventory),
    )  # fmt: skip


def _live_nics(dom: Any) -> list[tuple[str, str | None, str | None]]:
    root = etree.fromstring(dom.XMLDesc(0).encode())
    return [
        (str(n.find("mac").get("address")), n.find("source").get("network"),
         n.find("source").get("bridge"))
        for n in root.iterfind("./devices/interface")
    ]  # fmt: skip


def _live_disk(dom: Any) -> str:
    root = etree.fromstring(dom.XMLDesc(0).encode())
    return str(root.find("./devices/disk/source").get("file"))


def test_snapshot_with_memory_isolates_hashes_and_finds_tampering(
    real_inventory: Inventory, guest_factory: GuestFactory, service: ForensicService,
    isolated: tuple[str, str], realhost_env: Any, tmp_path: Path,
) -> None:  # fmt: skip
    network, bridge = isolated
    disk = _disk(guest_factory.workdir)
    guest = guest_factory(0, disk=disk, network=realhost_env.network or "corral", wait_ready=True)
    real_inventory.sync()
    before = _live_nics(guest.dom)
    assert before and before[0][1] == (realhost_env.network or "corral")

    with acting_as(TESTER):
        evidence = service.snapshot(guest.name, by="alice", reason="IDS alert 42", isolate=network)

    sizes = {f.name: f.size for f in evidence.files}
    print(f"forensic snapshot: {evidence.seconds:.2f} s, memory {sizes['memory.img'] / 2**20:.1f}"
          f" MiB, disk copy {sizes['vda.qcow2'] / 2**20:.1f} MiB")  # fmt: skip
    # the guest runs on, on its own disk again (the overlay was merged back and is gone)
    assert guest.dom.state()[0] == libvirt.VIR_DOMAIN_RUNNING
    assert _live_disk(guest.dom) == str(disk)
    assert not list(disk.parent.glob(f".{disk.name}.*")), "an overlay was left behind"
    # its NIC is on the isolated network, live, same MAC; the tap hangs on the new bridge
    after = _live_nics(guest.dom)
    assert [(mac, net, br) for mac, net, br in after] == [(before[0][0], network, bridge)]
    ports = subprocess.run(["ip", "-o", "link", "show", "master", bridge],
                           capture_output=True, text=True, check=True).stdout  # fmt: skip
    assert ports.count(" master ") == 1, ports
    assert [(n.mac, n.was) for n in evidence.moved] == [(before[0][0], before[0][1])]
    # the persistent definition is isolated too: a restart would not reconnect it
    inactive = etree.fromstring(guest.dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE).encode())
    assert inactive.find("./devices/interface/source").get("network") == network

    # the evidence: memory, the disk at the snapshot, the definition; read-only, hashed
    folder = service.store.folder(evidence.id)
    names = {f.name: f for f in evidence.files}
    assert set(names) == {"memory.img", "vda.qcow2", "domain.xml"}
    assert names["memory.img"].size > 32 * 2**20, "96 MiB guest: its RAM image is tens of MiB"
    assert names["vda.qcow2"].disk == "vda"
    for f in evidence.files:
        path = folder / f.name
        assert _sha256(path) == f.sha256 and path.stat().st_size == f.size
        assert path.stat().st_mode & 0o777 == 0o400
    assert folder.stat().st_mode & 0o777 == 0o500
    for byte, offset, length in PATTERNS:
        assert _holds(folder / "vda.qcow2", byte, offset, length)
    check = subprocess.run(["qemu-img", "check", str(folder / "vda.qcow2")],
                           capture_output=True, text=True, check=False)  # fmt: skip
    assert check.returncode == 0, check.stdout + check.stderr
    assert etree.fromstring((folder / "domain.xml").read_bytes()).findtext("uuid") == guest.uuid

    # chain of custody in the (hash-chained) audit log: who, why, each file and its hash
    entries = AuditLog(real_inventory.db).list(target=f"forensic:{evidence.id}")
    assert len(entries) == 1 and entries[0].actor == "forensic-test"
    after_doc = entries[0].after or {}
    assert after_doc["actor"] == "alice" and after_doc["reason"] == "IDS alert 42"
    assert after_doc["isolated_to"] == network
    assert {f["name"]: f["sha256"] for f in after_doc["files"]} == {
        f.name: f.sha256 for f in evidence.files
    }
    assert AuditLog(real_inventory.db).verify().intact

    assert [c.ok for c in service.verify(evidence.id)] == [True]
    assert [e.id for e in service.evidence(guest.name)] == [evidence.id]

    # tampering: one byte of the memory image changed (root can, despite 0400)
    memory = folder / "memory.img"
    folder.chmod(0o700)
    memory.chmod(0o600)
    with open(memory, "r+b") as fh:
        fh.seek(4096)
        old = fh.read(1)
        fh.seek(4096)
        fh.write(bytes([old[0] ^ 0xFF]))
    (folder / "notes.txt").write_text("planted")
    problems = service.verify(evidence.id)[0].problems
    assert problems == (
        "memory.img changed (its SHA-256 is not the recorded one)",
        "notes.txt was added",
    )


def test_cli_verify_reports_a_changed_file(
    real_inventory: Inventory, guest_factory: GuestFactory, db: Any, tmp_path: Path,
) -> None:  # fmt: skip
    guest = guest_factory(0, disk=_disk(guest_factory.workdir), wait_ready=True)
    real_inventory.sync()
    env = {
        **os.environ,
        "CORRAL_HOME": str(tmp_path / "home"),
        "CORRAL_DATABASE_URL": db.engine.url.render_as_string(hide_password=False),
        "CORRAL_FORENSIC_DIR": str(tmp_path / "forensic"),
        "CORRAL_BACKUP_REPOSITORY": str(tmp_path / "repo"),
    }

    def corral(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "corral", *args], capture_output=True,
                              text=True, env=env, timeout=300, check=False)  # fmt: skip

    took = corral("forensic", "snapshot", guest.name, "--reason", "by hand", "-o", "json")
    assert took.returncode == 0, took.stderr
    evidence = json.loads(took.stdout)
    ok = corral("forensic", "verify", evidence["id"], "-o", "json")
    assert ok.returncode == 0 and json.loads(ok.stdout)[0]["ok"] is True, ok.stdout + ok.stderr
    disk_copy = tmp_path / "forensic" / evidence["id"] / "vda.qcow2"
    disk_copy.chmod(0o600)
    with open(disk_copy, "ab") as fh:
        fh.write(b"\0")
    bad = corral("forensic", "verify", evidence["id"], "-o", "json")
    assert bad.returncode == 1
    assert json.loads(bad.stdout)[0]["problems"] == (
        "vda.qcow2 changed (its SHA-256 is not the recorded one)"
    )
    shown = corral("forensic", "show", evidence["id"], "-o", "json")
    assert json.loads(shown.stdout)["reason"] == "by hand"

    # rollback by command, without evidence: a point the executor takes, restored in place
    ran = corral("backup", "run", "--vm", guest.name, "-o", "json")
    assert ran.returncode == 0, ran.stdout + ran.stderr
    point = json.loads(ran.stdout)[0]["point"]
    wrong = corral("forensic", "rollback", guest.name, "--to", "20990101T000000-000000")
    assert wrong.returncode == 3 and "no restore point" in wrong.stderr
    assert "Traceback" not in wrong.stderr
    rolled = corral("forensic", "rollback", guest.name, "--to", point, "--no-evidence",
                    "--reason", "drill", "-o", "json")  # fmt: skip
    assert rolled.returncode == 0, rolled.stderr
    done = json.loads(rolled.stdout)
    assert done["point"] == point and done["evidence"] is None and done["started"] is True
    assert guest.dom.state()[0] == libvirt.VIR_DOMAIN_RUNNING
    listed = json.loads(corral("forensic", "list", "-o", "json").stdout)
    assert [e["id"] for e in listed] == [evidence["id"]], "--no-evidence took no snapshot"


# -- the signed webhook over real HTTP ------------------------------------------------------
@pytest.fixture
def server(real_inventory: Inventory, tmp_path: Path) -> Iterator[tuple[str, Any]]:
    """The API under uvicorn on a free loopback port; (base URL, app)."""
    settings = Settings(
        home=tmp_path / "home", forensic_dir=tmp_path / "forensic",
        backup_repository=tmp_path / "repo", forensic_webhook_secret=Secret(SECRET),
    )  # fmt: skip
    app = create_app(real_inventory, settings=settings)
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    port = srv.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}", app
    finally:
        srv.should_exit = True
        thread.join(timeout=30)
        app.state.jobs.shutdown(wait=True)


def _post(url: str, body: bytes, signature: str | None) -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers[SIGNATURE_HEADER] = signature
    return httpx.post(f"{url}/api/v1/forensic/webhook", content=body, headers=headers, timeout=30)


def _counts(inv: Inventory) -> tuple[int, int]:
    with inv.db.session() as s:
        return s.query(m.ForensicRecordRow).count(), s.query(m.Job).count()


def test_signed_webhook_over_http_snapshots_and_refuses_bad_or_replayed(
    real_inventory: Inventory, guest_factory: GuestFactory, server: tuple[str, Any],
    tmp_path: Path,
) -> None:  # fmt: skip
    url, app = server
    guest = guest_factory(0, disk=_disk(guest_factory.workdir), wait_ready=True)
    real_inventory.sync()
    doc = {"vm": guest.name, "reason": "suricata: ET EXPLOIT", "timestamp": time.time(),
           "id": "evt-1"}  # fmt: skip
    body = json.dumps(doc).encode()

    old = json.dumps({**doc, "timestamp": time.time() - 3600}).encode()
    refused = [
        _post(url, body, None),  # unsigned
        _post(url, body, sign(b"not-the-secret", body)),  # wrong key
        _post(url, body + b" ", sign(SECRET.encode(), body)),  # body changed after signing
        _post(url, old, sign(SECRET.encode(), old)),  # signed, but an hour old
    ]
    assert [r.status_code for r in refused] == [401] * 4
    assert all(r.json()["code"] == "webhook-refused" for r in refused)
    assert all(SECRET not in r.text for r in refused)
    assert _counts(real_inventory) == (0, 0), "a refused delivery did something"

    good = _post(url, body, sign(SECRET.encode(), body))
    assert good.status_code == 202, good.text
    job_id = good.json()["id"]
    replayed = _post(url, body, sign(SECRET.encode(), body))
    assert replayed.status_code == 401 and replayed.json()["code"] == "webhook-refused"

    job = app.state.jobs.get(job_id)
    deadline = time.monotonic() + 180
    while job.state.value in ("queued", "running"):
        assert time.monotonic() < deadline, "the snapshot job never finished"
        time.sleep(0.2)
        job = app.state.jobs.get(job_id)
    assert job.state.value == "succeeded", job.error
    assert job.submitted_by == "ids-webhook"
    result = job.result or {}
    assert result["vm_name"] == guest.name and result["reason"] == "IDS: suricata: ET EXPLOIT"
    folder = tmp_path / "forensic" / result["id"]
    assert {f["name"] for f in result["files"]} == {"memory.img", "vda.qcow2", "domain.xml"}
    for f in result["files"]:
        assert _sha256(folder / f["name"]) == f["sha256"]
    assert _counts(real_inventory) == (1, 1), "the replay must not have made a second job"
    entry = AuditLog(real_inventory.db).list(target=f"forensic:{result['id']}")[0]
    assert entry.actor == "ids-webhook" and entry.origin.startswith("api webhook 127.0.0.1")
    submitted = AuditLog(real_inventory.db).list(target=f"job:{job_id}")
    assert [(e.action, e.actor, e.origin) for e in submitted][:1] == [
        ("create", "ids-webhook", "api webhook 127.0.0.1 event evt-1")
    ]

    # an auditor reads and re-hashes the evidence over the same HTTP server, may not take any
    UserService(real_inventory.db).add("auditor1", roles=["auditor"])
    auth = {"Authorization": f"Bearer {TokenStore(real_inventory.db).create('a1', 'auditor1')}"}
    listed = httpx.get(f"{url}/api/v1/forensic/snapshots", headers=auth, timeout=30).json()
    assert [e["id"] for e in listed["items"]] == [result["id"]]
    checked = httpx.post(f"{url}/api/v1/forensic/snapshots/{result['id']}/verify",
                         headers=auth, timeout=60).json()  # fmt: skip
    assert checked["ok"] is True and checked["files"] == 3, checked
    took = httpx.post(f"{url}/api/v1/forensic/snapshots", headers=auth, timeout=30,
                      json={"vm": guest.name, "reason": "auditor tries"})  # fmt: skip
    assert took.status_code == 403


# -- rollback ---------------------------------------------------------------------------------
def test_rollback_to_a_backup_point_keeps_evidence_and_restores_the_data(
    real_inventory: Inventory, guest_factory: GuestFactory, service: ForensicService,
) -> None:  # fmt: skip
    disk = _disk(guest_factory.workdir)
    guest = guest_factory(0, disk=disk, wait_ready=True)
    real_inventory.sync()
    executor = Executor(real_inventory.db, service.repo, Policy(), HostOpener.of(real_inventory))
    point = executor.run(guest.name).outcomes[0]
    assert point.status == "done" and point.point, point.detail

    # the compromise: with the guest off, its first 8 MiB are overwritten; it boots again
    guest.dom.destroy()
    assert _qemu_io(disk, "write -P 0xEE 0M 8M").returncode == 0
    guest.console_log.write_text("")
    guest.dom.create()
    wait_for_console(guest.console_log, timeout_s=120)
    assert _holds(disk, 0xEE, 0, 8)

    with acting_as(TESTER):
        done = service.rollback(guest.name, point.point, by="bob", reason="rootkit found")

    assert done.evidence is not None and done.started
    assert guest.dom.state()[0] == libvirt.VIR_DOMAIN_RUNNING
    for byte, offset, length in PATTERNS:  # the known-good data is back
        assert _holds(disk, byte, offset, length), f"{byte:#x}@{offset}M not restored"
    kept = service.store.folder(done.evidence) / "vda.qcow2"  # the compromise is evidence
    assert _holds(kept, 0xEE, 0, 8) and _holds(kept, 0x5C, 40, 8)
    assert [c.ok for c in service.verify(done.evidence)] == [True]
    log = AuditLog(real_inventory.db)
    kinds = [(e.after or {}).get("kind") for e in log.list(target="forensic:")]
    assert kinds == ["snapshot", "rollback"]
    rollback = log.list(target="forensic:")[1].after or {}
    assert rollback["point_id"] == point.point and rollback["evidence_id"] == done.evidence
    assert rollback["actor"] == "bob" and rollback["reason"] == "rootkit found"
    assert log.list(target=f"restore:{point.point}"), "the restore itself is audited too"


def test_a_stopped_vm_gives_one_sentence_and_leaves_no_folder(
    real_inventory: Inventory, guest_factory: GuestFactory, service: ForensicService,
) -> None:  # fmt: skip
    guest = guest_factory(0, disk=_disk(guest_factory.workdir), start=False)
    real_inventory.sync()
    with acting_as(TESTER), pytest.raises(ConflictError) as caught:
        service.snapshot(guest.name, by="alice", reason="too late")
    assert caught.value.message == (
        f"{guest.name} is not running: a memory snapshot needs a running VM."
    )
    root = service.store.root
    assert not root.exists() or not list(root.iterdir()), "a failed capture left a folder"
    assert service.evidence() == []
