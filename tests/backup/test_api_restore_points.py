"""Restore points over REST: the CLI's listing, one manifest, verification, garbage collection;
tokens where the routes need them; 404 and 422 as problems."""

from __future__ import annotations

from typing import Any

import pytest

from corral.config import Settings
from corral.store.backup_repo import Repository
from tests.api.support import Api, api_fixture, cli_json, settings_fixture  # noqa: F401 - fixtures
from tests.backup.points import make_point

pytestmark = pytest.mark.parametrize("db", ["postgresql"], indirect=True)


@pytest.fixture
def repo(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Repository:
    monkeypatch.setenv("CORRAL_HOME", str(settings.home))  # the CLI in this process, same home
    return Repository(settings.home / "backups")


def test_points_list_show_verify_and_gc(api: Api, repo: Repository) -> None:
    full = make_point(repo, 1, None, api_db(api))
    inc = make_point(repo, 2, full.id, api_db(api))
    assert api.get("/api/v1/backup/points", token=False).status_code == 401

    listed = api.get("/api/v1/backup/points").json()["items"]
    assert [(p["id"], p["kind"], p["parent"]) for p in listed] == [
        (full.id, "full", None), (inc.id, "incremental", full.id)
    ]  # fmt: skip
    assert [p["id"] for p in listed] == [p["id"] for p in cli_json("backup", "points")]
    first = api.get("/api/v1/backup/points", limit=1).json()
    assert [p["id"] for p in first["items"]] == [full.id] and first["total"] == 2
    rest = api.get("/api/v1/backup/points", limit=1, cursor=first["next_cursor"]).json()
    assert [p["id"] for p in rest["items"]] == [inc.id] and rest["next_cursor"] is None
    one = api.get(f"/api/v1/backup/points/{inc.id}").json()
    assert one["bytes"] == inc.size and {f["name"] for f in one["files"]} == {
        "vda.qcow2", "domain.xml"
    }  # fmt: skip
    assert api.get("/api/v1/backup/points/20990101T000000-000000").status_code == 404
    assert api.get("/api/v1/backup/points/..%2Fetc").status_code in (404, 422)

    assert api.ok(f"/api/v1/backup/points/{inc.id}/verify", {}) == {
        "point": inc.id, "ok": True, "problems": []
    }  # fmt: skip
    (repo.folder(inc.id) / "domain.xml").write_text("<domain>changed</domain>")
    bad = api.ok(f"/api/v1/backup/points/{inc.id}/verify", {})
    assert bad["ok"] is False and "domain.xml" in bad["problems"][0]

    gc = api.ok("/api/v1/backup/gc", {"dry_run": True})
    assert gc["removed"] == [] and set(gc["kept"]) == {full.id, inc.id}  # restart keeps 2 last


def test_restore_of_a_missing_point_fails_as_a_job_with_one_sentence(api: Api) -> None:
    job = api.job("/api/v1/backup/restore", {"point": "20990101T000000-000000", "as_name": "x1"})
    assert job["state"] == "failed"
    assert "no restore point" in str(job["error"])
    r = api.post("/api/v1/backup/restore", {"point": "../../etc"})
    assert r.status_code == 422


def api_db(api: Api) -> Any:
    return api.client.app.state.inventory.db  # type: ignore[attr-defined]


def test_a_held_point_outlives_gc_until_released(api: Api, repo: Repository) -> None:
    points = [make_point(repo, n, None, api_db(api)) for n in (1, 2, 3)]  # restart keeps 2
    oldest = points[0].id
    held = api.post(f"/api/v1/backup/points/{oldest}/hold", {"reason": "case 3"})
    assert held.status_code == 200 and held.json() == {"point": oldest, "on_hold": True}
    again = api.post(f"/api/v1/backup/points/{oldest}/hold", {"reason": "case 3"})
    assert again.status_code == 409 and again.json()["code"] == "conflict"
    assert api.post(f"/api/v1/backup/points/{oldest}/hold", {"reason": ""}).status_code == 422
    missing = api.post("/api/v1/backup/points/20990101T000000-000000/hold", {"reason": "x"})
    assert missing.status_code == 404 and missing.json()["code"] == "not-found"

    gc = api.ok("/api/v1/backup/gc", {"dry_run": False})
    assert (gc["removed"], gc["held"]) == ([], [oldest])
    assert gc["kept"][oldest] == "on hold: case 3"
    released = api.post(f"/api/v1/backup/points/{oldest}/release", {"reason": "closed"})
    assert released.json() == {"point": oldest, "on_hold": False}
    assert api.post(f"/api/v1/backup/points/{oldest}/release", {"reason": "x"}).status_code == 409
    assert api.ok("/api/v1/backup/gc", {"dry_run": False})["removed"] == [oldest]
    assert [p.id for p in repo.points()] == [p.id for p in points[1:]]
