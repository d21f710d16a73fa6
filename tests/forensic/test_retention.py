"""Evidence retention without a hypervisor: sealed evidence folders and custody rows in a real
database. ``expire`` deletes evidence past ``retention_days`` (a custody record first, with the
hashes as they were just before), refuses evidence on legal hold until it is released, and
writes a hash mismatch found at deletion into the record."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from corral.api.app import create_app
from corral.config import Settings
from corral.errors import ConflictError, NotFoundError
from corral.inventory.service import Inventory
from corral.security.token_store import TokenStore
from corral.services.audit import Actor, AuditLog, acting_as
from corral.services.backup_exec import HostOpener
from corral.services.forensic import ForensicService
from corral.services.users import UserService
from corral.store import models as m
from corral.store.backup_repo import Repository
from corral.store.db import Database
from corral.store.evidence import EvidenceStore
from tests.forensic.support import forensic_service, taken

TAKEN = datetime(2026, 9, 1, 12, tzinfo=UTC)


def _records(db: Database, kind: str) -> list[m.ForensicRecordRow]:
    with db.session() as s:
        rows = s.query(m.ForensicRecordRow).filter_by(kind=kind).all()
        s.expunge_all()
        return rows


def test_expiry_deletes_old_evidence_and_spares_what_is_on_hold(
    db: Database, tmp_path: Path
) -> None:
    service = forensic_service(db, tmp_path)
    old = taken(service, "20260901T120000-aaaa", TAKEN)
    held = taken(service, "20260901T120001-bbbb", TAKEN)
    young = taken(service, "20260925T120000-cccc", TAKEN + timedelta(days=24))
    service.hold(held.id, by="counsel", reason="case 7")
    with pytest.raises(ConflictError, match="on hold already"):
        service.hold(held.id, by="counsel", reason="case 7")
    service.now = lambda: TAKEN + timedelta(days=31)

    with acting_as(Actor("cron", "admin", "cli")):
        run = service.expire(by="cron")

    assert (run.retention_days, run.deleted, run.held) == (30, (old.id,), (held.id,))
    assert not service.store.folder(old.id).exists()
    assert [e.id for e in service.evidence()] == [held.id, young.id]
    with pytest.raises(NotFoundError, match="retention ended"):
        service.show(old.id)
    [gone] = _records(db, "expired")
    assert (gone.evidence_id, gone.actor, gone.reason) == (
        old.id, "cron", "retention of 30 days ended"
    )  # fmt: skip
    assert [f["sha256"] for f in gone.files] == [f.sha256 for f in old.files]
    audited = AuditLog(db).list(target=f"forensic:{gone.id}")
    assert len(audited) == 1 and (audited[0].after or {})["evidence_id"] == old.id
    assert service.expire(by="cron").deleted == ()  # deleted once, recorded once

    with pytest.raises(ConflictError, match="not on hold"):
        service.release(young.id, by="counsel", reason="no hold")
    service.release(held.id, by="counsel", reason="case 7 closed")
    assert not service.on_hold(held.id)
    service.now = lambda: TAKEN + timedelta(days=60)
    assert service.expire(by="cron").deleted == (held.id, young.id)
    assert service.evidence() == []
    assert [r.kind for r in _records(db, "hold") + _records(db, "release")] == ["hold", "release"]
    assert AuditLog(db).verify().intact


def test_a_tampered_file_found_at_deletion_goes_into_the_record(
    db: Database, tmp_path: Path
) -> None:
    service = forensic_service(db, tmp_path)
    evidence = taken(service, "20260901T120000-dddd", TAKEN)
    folder = service.store.folder(evidence.id)
    folder.chmod(0o700)
    (folder / "vda.qcow2").chmod(0o600)
    (folder / "vda.qcow2").write_bytes(b"changed")
    service.now = lambda: TAKEN + timedelta(days=31)

    assert service.expire(by="cron").deleted == (evidence.id,)
    [gone] = _records(db, "expired")
    assert "vda.qcow2 changed" in gone.reason


def test_the_cli_holds_releases_and_expires(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    env = {**os.environ, "CORRAL_HOME": str(home), "CORRAL_FORENSIC_RETENTION_DAYS": "30"}
    env.pop("CORRAL_DATABASE_URL", None)
    env.pop("CORRAL_FORENSIC_DIR", None)
    db = Database(f"sqlite:///{home / 'corral.db'}")
    db.migrate()
    service = ForensicService(
        db, EvidenceStore(home / "forensic"), Repository(tmp_path / "repo"), HostOpener(db)
    )
    evidence = taken(service, "20260901T120000-eeee", TAKEN)  # long past 30 days
    db.dispose()

    def corral(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "corral", "forensic", *args],
            env=env, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip

    held = corral("hold", evidence.id, "--reason", "case 9")
    assert held.returncode == 0, held.stderr
    refused = json.loads(corral("expire", "-o", "json").stdout)
    assert (refused["deleted"], refused["held"]) == ([], [evidence.id])
    assert corral("release", evidence.id, "--reason", "closed").returncode == 0
    done = json.loads(corral("expire", "-o", "json").stdout)
    assert (done["retention_days"], done["deleted"]) == (30, [evidence.id])
    assert not (home / "forensic" / evidence.id).exists()
    again = corral("release", evidence.id, "--reason", "x")
    assert again.returncode != 0 and "Traceback" not in again.stderr


@pytest.fixture
def api(inventory: Inventory, tmp_path: Path) -> Iterator[tuple[TestClient, dict[str, str]]]:
    UserService(inventory.db).add("carol", roles=["operator"])
    token = TokenStore(inventory.db).create("carol", "carol")
    settings = Settings(
        home=tmp_path / "home", forensic_dir=tmp_path / "forensic", forensic_retention_days=30
    )
    app = create_app(inventory, settings=settings)
    yield TestClient(app), {"Authorization": f"Bearer {token}"}
    app.state.jobs.shutdown(wait=True)


@pytest.mark.parametrize("db", ["postgresql"], indirect=True)
def test_the_api_holds_releases_and_expires(
    api: tuple[TestClient, dict[str, str]], inventory: Inventory, tmp_path: Path
) -> None:
    client, auth = api
    service = forensic_service(inventory.db, tmp_path)  # writes into the app's evidence folder
    old = taken(service, "20260901T120000-ffff", TAKEN)  # past 30 days on any real clock now
    held = taken(service, "20260901T120001-abab", TAKEN)
    young = taken(service, "20990101T000000-cdcd", datetime(2099, 1, 1, tzinfo=UTC))
    base = "/api/v1/forensic"

    def post(path: str, body: dict[str, str] | None = None) -> Any:
        return client.post(base + path, json=body, headers=auth)

    hold = post(f"/snapshots/{held.id}/hold", {"reason": "case 12"})
    assert hold.status_code == 200 and hold.json() == {"evidence": held.id, "on_hold": True}
    twice = post(f"/snapshots/{held.id}/hold", {"reason": "case 12"})
    assert twice.status_code == 409 and twice.json()["code"] == "conflict", twice.text
    assert twice.headers["content-type"].startswith("application/problem+json")
    missing = post("/snapshots/20260101T000000-0000/hold", {"reason": "x"})
    assert missing.status_code == 404 and missing.json()["code"] == "not-found"
    for bad in ({"reason": ""}, {"reason": "line\x00"}, {}):
        assert post(f"/snapshots/{old.id}/hold", bad).status_code == 422, bad
    not_held = post(f"/snapshots/{young.id}/release", {"reason": "x"})
    assert not_held.status_code == 409
    assert not service.on_hold(old.id) and not service.on_hold(young.id)  # refusals did nothing

    run = post("/expire")
    assert run.status_code == 200, run.text
    assert run.json() == {"retention_days": 30, "deleted": [old.id], "held": [held.id]}
    assert [e.id for e in service.evidence()] == [held.id, young.id]
    assert post(f"/snapshots/{old.id}/hold", {"reason": "too late"}).status_code == 404

    assert post(f"/snapshots/{held.id}/release", {"reason": "closed"}).json()["on_hold"] is False
    assert post("/expire").json()["deleted"] == [held.id]
    kinds = {
        r.kind: r.actor for r in _records(inventory.db, "hold") + _records(inventory.db, "release")
    }
    assert kinds == {"hold": "carol", "release": "carol"}
    expired = AuditLog(inventory.db).list(user="carol")
    assert {(e.after or {}).get("kind") for e in expired} >= {"hold", "release", "expired"}
