"""The planning page over HTTP: each host's rank, filter and weigher scores for a VM size, the
what-if figures and the consolidation job, each compared with the planning service's own
answer on the same live fleet; who may read and who may start a plan, decided on the server.

Real app (FastAPI's TestClient) on the demo fleet, on SQLite and PostgreSQL; the flow in
Chromium is in test_browser_plan.py.
"""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from lxml import html as lhtml

from corral.services import planning
from corral.services.fleet import live_fleet
from corral.web.pages import CSP
from tests.web.conftest import Demo
from tests.web.test_backup_pages import counts, finished
from tests.web.test_request_pages import csrf, departments, sign_in, user

PLAN_JOB = re.compile(r"^/plan/jobs/([0-9a-f]{32})$")


def rows(text: str, table: str) -> list[list[str]]:
    doc = lhtml.document_fromstring(text)
    return [
        [c.text_content().strip() for c in tr.xpath("./td|./th")]
        for tr in doc.xpath(f"//table[@id='{table}']/tbody/tr")
    ]


def test_the_ranking_is_the_placement_engines(client: TestClient, db_demo: Demo) -> None:
    sign_in(client, user(db_demo, "auditor"))
    r = client.get("/plan", params={"vcpus": "2", "memory_mib": "4096", "strategy": "stack"})
    assert r.status_code == 200 and r.headers["content-security-policy"] == CSP
    fleet = live_fleet(db_demo.inv).fleet
    want = planning.rank_hosts(
        fleet, planning.NewVM("new-vm", 2, 4096), planning.PlacementStrategy.stack
    )
    shown = rows(r.text, "ranking")
    assert [row[1] for row in shown] == [w.host for w in want] and len(shown) == 3
    for row, w in zip(shown, want, strict=True):
        if w.rank is None:
            assert row[-2:] == [w.rejected_by, w.reason]
        else:
            assert row[0] == str(w.rank) and row[-3] == f"{w.total:.3f}"
            assert row[2 : 2 + len(w.scores)] == [f"{s:.3f}" for _, s in w.scores]
    chosen = planning.place_vms(
        fleet, new=[planning.NewVM("x", 2, 4096)], strategy=planning.PlacementStrategy.stack
    )
    assert shown[0][1] == chosen.outcomes[0].host  # the first is where place_vms puts it


def test_a_vm_no_host_can_take_shows_every_refusal(client: TestClient, db_demo: Demo) -> None:
    sign_in(client, user(db_demo, "operator"))
    r = client.get("/plan", params={"vcpus": "512", "memory_mib": "16000000"})
    shown = rows(r.text, "ranking")
    assert len(shown) == 3 and all(row[0] == "—" and row[-1] for row in shown)
    assert "No host can take this VM now." in r.text


def test_what_if_a_host_leaves_and_vms_come(client: TestClient, db_demo: Demo) -> None:
    sign_in(client, user(db_demo, "auditor"))
    fleet = live_fleet(db_demo.inv).fleet
    host = fleet.hosts[0].name
    params = {"remove": host, "add": "5", "add_vcpus": "2", "add_memory_mib": "2048"}
    r = client.get("/plan", params=params)
    assert r.status_code == 200
    want = planning.whatif(fleet, [planning.RemoveHost(host), planning.AddVMs(5, 2, 2048)])
    figures = {row[0]: row[1:] for row in rows(r.text, "whatif")}
    tolerated = figures["Host failures tolerated (HA)"]
    assert tolerated == [
        str(want.before.ha_tolerated_host_failures),
        str(want.after.ha_tolerated_host_failures),
    ]
    assert figures["Hosts"] == [str(want.before.hosts), str(want.after.hosts)]
    assert figures["Running VMs"] == [str(want.before.running_vms), str(want.after.running_vms)]
    assert figures["Free vCPUs"][1] == f"{want.after.free_vcpus:,.1f}"
    verdict = lhtml.document_fromstring(r.text).get_element_by_id("whatif-verdict").text_content()
    assert ("still fits" in verdict) == (not want.not_placed)
    assert "counted up to what the N+K setting asks for" in verdict  # not the fleet's most
    room = planning.headroom(want.after, 2, 2048)
    assert f"at most {room:,} more VMs of 2 vCPUs and 2048 MiB" in r.text


@pytest.mark.parametrize(
    ("params", "status", "words"),
    [
        ({"vcpus": "two", "memory_mib": "1"}, 422, "whole number"),
        ({"vcpus": "0", "memory_mib": "1"}, 422, "from 1 to"),
        ({"vcpus": "1", "memory_mib": "1", "strategy": "scatter"}, 422, "spread or stack"),
        ({"remove": "no-such-host"}, 404, "no-such-host"),
        ({"add": "-3"}, 422, "whole number"),
    ],
)
def test_a_bad_question_is_one_sentence(
    client: TestClient, db_demo: Demo, params: dict[str, str], status: int, words: str
) -> None:
    sign_in(client, user(db_demo, "operator"))
    r = client.get("/plan", params=params)
    assert r.status_code == status and words in r.text and "Traceback" not in r.text


def test_requesters_and_approvers_may_not_read_plans(client: TestClient, db_demo: Demo) -> None:
    mine, _ = departments(db_demo)
    for role in ("requester", "approver"):
        sign_in(client, user(db_demo, role, mine))
        assert 'href="/plan"' not in client.get("/requests").text
        assert client.get("/plan").status_code == 403
        assert client.get("/plan/jobs/" + "0" * 32).status_code == 403
    client.cookies.clear()
    r = client.get("/plan", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login")


def test_an_operator_plans_a_consolidation_and_reads_its_migrations(
    client: TestClient, db_demo: Demo
) -> None:
    operator = user(db_demo, "operator")
    sign_in(client, operator)
    page = client.get("/plan").text
    assert 'href="/plan"' in page and 'action="/plan/consolidate"' in page
    r = client.post(
        "/plan/consolidate",
        data={"csrf": csrf(client, "/plan"), "mode": "heuristic"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    found = PLAN_JOB.match(r.headers["location"])
    assert found, r.headers["location"]
    job = finished(db_demo, found.group(1))
    assert job.state.value == "succeeded", job.error
    assert job.kind == "plan.consolidate" and job.submitted_by == operator and job.result
    want = planning.consolidate(live_fleet(db_demo.inv).fleet, planning.ConsolidationMode.heuristic)
    shown = client.get(r.headers["location"])
    assert 'http-equiv="refresh"' not in shown.text
    steps = rows(shown.text, "migrations")
    assert [(s[1], s[2], s[3]) for s in steps if len(s) == 5] == [
        (m.vm, m.source or "new", m.target) for m in want.schedule.steps
    ]
    freed = lhtml.document_fromstring(shown.text).get_element_by_id("freed-hosts").text_content()
    for host in want.hosts_to_power_off:
        assert host in freed
    assert list(job.result["hosts_to_power_off"]) == list(want.hosts_to_power_off)


def test_starting_a_consolidation_is_refused_without_the_right_or_the_form_token(
    client: TestClient, db_demo: Demo
) -> None:
    before = counts(db_demo)
    sign_in(client, user(db_demo, "auditor"))
    page = client.get("/plan")
    assert page.status_code == 200 and 'action="/plan/consolidate"' not in page.text
    token = csrf(client, "/plan")
    assert client.post("/plan/consolidate", data={"csrf": token}).status_code == 403
    sign_in(client, user(db_demo, "operator"))
    assert client.post("/plan/consolidate", data={"csrf": "forged"}).status_code == 403
    bad = client.post("/plan/consolidate", data={"csrf": csrf(client, "/plan"), "mode": "magic"})
    assert bad.status_code == 422 and "consolidation mode" in bad.text
    assert counts(db_demo) == before
    assert client.get("/plan/jobs/" + "0" * 32).status_code == 404
