"""The reclamation workflow over HTTP: bearer tokens for writes, the e-mailed token for answers."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from corral.api.app import create_app
from corral.inventory.service import Inventory
from corral.security.token_store import TokenStore
from corral.services.audit import AuditLog
from corral.services.users import UserService
from tests.conftest import Clock
from tests.reclaim.conftest import Inbox, make_service

WEB = "web-01"
BASE = "/api/v1/reclaim"


class Api:
    """A client with two people's tokens: ops flags, the manager approves."""

    def __init__(self, client: TestClient, ops: str, manager: str) -> None:
        self.client = client
        self.ops = {"Authorization": f"Bearer {ops}"}
        self.manager = {"Authorization": f"Bearer {manager}"}

    def post(self, path: str, body: Any = None, *, who: str = "ops", want: int = 200) -> Any:
        headers = self.ops if who == "ops" else self.manager
        resp = self.client.post(BASE + path, json=body, headers=headers)
        assert resp.status_code == want, resp.text
        return resp.json()

    def get(self, path: str, **params: Any) -> Any:
        resp = self.client.get(BASE + path, params=params, headers=self.ops)
        assert resp.status_code == 200, resp.text
        return resp.json()

    def run(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.post("/run", {})["outcomes"]
        return result


@pytest.fixture
def api(fleet: Inventory, smtp: tuple[Inbox, Any]) -> Api:
    _, settings = smtp
    tokens = TokenStore(fleet.db)
    for person in ("ops", "manager"):  # two people: who flags may not also approve
        UserService(fleet.db).add(person, roles=["operator"])
    ops, manager = tokens.create("ops", "ops"), tokens.create("manager", "manager")
    app = create_app(fleet, tokens, reclaim=make_service(fleet, settings))
    return Api(TestClient(app), ops, manager)


def _problem(resp: Any, status: int, code: str) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = resp.json()
    assert body["status"] == status and body["code"] == code and body["detail"]
    return body


def _mailed_token(inbox: Inbox, case_id: int) -> str:
    (notice,) = inbox.for_case(case_id, "notify")
    found = re.search(r'"token": "([A-Za-z0-9_\-]+)"', notice.get_content())
    assert found, notice.get_content()
    return found.group(1)


def _flag(api: Api, vm: str = WEB) -> dict[str, Any]:
    body = {"vm": vm, "category": "idle", "reason": "idle for 30 days"}
    case: dict[str, Any] = api.post("/cases", body, want=201)
    return case


def test_every_write_needs_a_bearer_token(api: Api) -> None:
    case = _flag(api)
    writes = [
        ("/cases", {"vm": "db-01", "category": "idle", "reason": "idle"}),
        (f"/cases/{case['id']}/confirm", None),
        (f"/cases/{case['id']}/extend", {"until": "2030-01-01", "reason": "x"}),
        (f"/cases/{case['id']}/approve", {"step": "delete"}),
        (f"/cases/{case['id']}/restore", None),
        (f"/cases/{case['id']}/cancel", {"reason": "x"}),
        ("/run", {"dry_run": False}),
    ]
    for path, body in writes:
        _problem(api.client.post(BASE + path, json=body), 401, "unauthorized")
        bad = {"Authorization": "Bearer corral_nope_nope"}
        assert api.client.post(BASE + path, json=body, headers=bad).status_code == 401
    (only,) = api.get("/cases")["items"]
    assert only["state"] == "flagged" and only["flagged_by"] == "ops"
    assert api.get("/cases/1")["history"][0]["kind"] == "reclaim-flagged"


def test_owner_extends_with_the_mailed_token_and_no_bearer(
    api: Api, smtp: tuple[Inbox, Any], clock: Clock, fleet: Inventory
) -> None:
    inbox, _ = smtp
    case = _flag(api)
    assert [o["result"] for o in api.run()] == ["done"]
    token = _mailed_token(inbox, case["id"])
    until = (clock.now.date() + timedelta(days=90)).isoformat()
    answer = {"token": "x" * 43, "action": "extend", "until": until, "reason": "quarter end"}
    _problem(api.client.post(BASE + "/respond", json=answer), 404, "not-found")

    answer["token"] = token
    resp = api.client.post(BASE + "/respond", json=answer)
    assert resp.status_code == 200, resp.text
    assert resp.json() == {
        "id": case["id"],
        "vm": WEB,
        "state": "extended",
        "extended_until": until,
    }
    assert fleet.find_vm(WEB).expires_on.isoformat() == until
    assert inbox.for_case(case["id"], "extend")  # the owner is told the VM was kept
    owners = AuditLog(fleet.db).list(user="owner-by-mail")  # audited, without the token
    assert f"reclaim-case:{case['id']}" in {e.target for e in owners}
    assert all(token not in e.origin for e in owners)
    detail = api.get(f"/cases/{case['id']}")
    assert detail["extend_reason"] == "quarter end"
    assert [e["kind"] for e in detail["history"]] == [
        "reclaim-flagged",
        "reclaim-notified",
        "reclaim-extended",
    ]
    # the link is spent once the case is closed
    _problem(api.client.post(BASE + "/respond", json=answer), 409, "conflict")
    # and the VM cannot be flagged again while the extension holds
    body = {"vm": WEB, "category": "idle", "reason": "again"}
    _problem(api.client.post(BASE + "/cases", json=body, headers=api.ops), 409, "conflict")


def test_quarantine_archive_approve_delete(
    api: Api, smtp: tuple[Inbox, Any], clock: Clock, fleet: Inventory
) -> None:
    inbox, _ = smtp
    case = _flag(api)
    cid = case["id"]
    api.run()
    dry = api.post("/run", {"dry_run": True})
    assert dry["dry_run"] and dry["mail"].startswith("SMTP 127.0.0.1:")
    assert dry["outcomes"][0]["result"] == "waiting"
    clock.advance(days=8)
    dry = api.post("/run", {"dry_run": True})["outcomes"]
    assert [(o["step"], o["result"]) for o in dry] == [("quarantine", "would-do")]
    assert fleet.find_vm(WEB).state == "running"  # a dry run changes nothing
    assert api.run()[0]["step"] == "quarantine"
    assert fleet.find_vm(WEB).state == "shutoff"
    assert api.get("/cases", state="quarantined", open="true")["items"][0]["id"] == cid
    assert api.get("/cases", state="notified")["items"] == []
    clock.advance(days=8)
    assert api.run()[0]["step"] == "archive"
    clock.advance(days=15)
    (waiting,) = api.run()
    assert waiting["result"] == "waiting" and "approval" in waiting["detail"]

    refused = api.client.post(
        f"{BASE}/cases/{cid}/approve", json={"step": "delete"}, headers=api.ops
    )
    _problem(refused, 403, "forbidden")  # four eyes: not the one who flagged
    approved = api.post(f"/cases/{cid}/approve", {"step": "delete", "note": "ok"}, who="manager")
    assert approved["approvals"] == [
        {
            "step": "delete",
            "approver": "manager",
            "at": approved["approvals"][0]["at"],
            "note": "ok",
        }
    ]
    assert api.run()[0]["result"] == "done"
    done = api.get(f"/cases/{cid}")
    assert done["state"] == "deleted" and fleet.find_vm(WEB).deleted_at is not None
    assert inbox.for_case(cid, "delete")
    kinds = [e["kind"] for e in done["history"]]
    assert kinds == [
        "reclaim-flagged",
        "reclaim-notified",
        "quarantined",
        "archived",
        "reclaim-approved",
        "reclaim-deleted",
    ]
    savings = api.get("/savings")
    assert savings["monthly_now"] == pytest.approx(done["monthly_cost"])
    # 23 days powered off (quarantined day 8, deleted day 31) at the powered-off rate
    assert savings["realized"] == pytest.approx(done["monthly_saving_off"] * 23 / 30.4375, abs=0.05)


def test_restore_and_wrong_state_steps(api: Api, clock: Clock, fleet: Inventory) -> None:
    case = _flag(api)
    cid = case["id"]
    restore = api.client.post(f"{BASE}/cases/{cid}/restore", headers=api.ops)
    body = _problem(restore, 409, "conflict")
    assert "cannot restore a case that is flagged" in body["detail"]
    _problem(api.client.post(f"{BASE}/cases/{cid}/confirm", headers=api.ops), 409, "conflict")
    api.run()
    assert api.post(f"/cases/{cid}/confirm")["state"] == "confirmed"
    assert api.run()[0]["step"] == "quarantine"  # confirmed: no need to wait for the deadline
    restored = api.post(f"/cases/{cid}/restore")
    assert restored["state"] == "restored"
    assert fleet.find_vm(WEB).state == "running"
    other = _flag(api, "cache-01")
    cancelled = api.post(f"/cases/{other['id']}/cancel", {"reason": "false positive"})
    assert cancelled["state"] == "cancelled"
    assert api.get("/cases", open="true")["items"] == []
    _problem(api.client.get(f"{BASE}/cases/999", headers=api.ops), 404, "not-found")
    moot = api.client.post(f"{BASE}/cases/999/confirm", headers=api.ops)
    _problem(moot, 404, "not-found")


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/cases", {"vm": WEB, "category": "idle", "reason": "x", "owner": "me"}),
        ("/cases", {"vm": WEB, "category": "idel", "reason": "x"}),
        ("/cases", {"vm": WEB, "category": "idle", "reason": "   "}),
        ("/cases", {"vm": WEB, "category": "idle", "reason": "x" * 1025}),
        ("/cases/1/extend", {"until": "2026-02-30", "reason": "x"}),
        ("/cases/1/extend", {"until": 1800000000, "reason": "x"}),
        ("/cases/1/extend", {"until": "2030-01-01"}),
        ("/cases/1/approve", {"step": "notify"}),
        ("/cases/1/cancel", {"reason": "x", "force": True}),
        ("/run", {"dry_run": True, "all": True}),
    ],
)
def test_bad_bodies_are_422_and_change_nothing(api: Api, path: str, body: Any) -> None:
    _flag(api)
    resp = api.client.post(BASE + path, json=body, headers=api.ops)
    _problem(resp, 422, "validation-failed")
    (case,) = api.get("/cases")["items"]
    assert case["state"] == "flagged"


@pytest.mark.parametrize(
    "body",
    [
        {"token": "t" * 43, "action": "extend", "reason": "no date"},
        {"token": "t" * 43, "action": "extend", "until": "2030-01-01"},
        {"token": "t" * 43, "action": "extend", "until": "01/02/2030", "reason": "x"},
        {"token": "t" * 43, "action": "delete"},
        {"token": "t" * 43, "action": "confirm", "case": 1},
    ],
)
def test_bad_answers_are_422(api: Api, body: Any) -> None:
    _problem(api.client.post(BASE + "/respond", json=body), 422, "validation-failed")


def test_bad_query_is_422(api: Api) -> None:
    _problem(
        api.client.get(BASE + "/cases", params={"state": "gone"}, headers=api.ops),
        422,
        "validation-failed",
    )
    _problem(api.client.get(BASE + "/cases/0", headers=api.ops), 422, "validation-failed")
