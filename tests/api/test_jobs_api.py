"""Jobs over HTTP: 202 → running → succeeded with a result; failed with problem details;
tokens; paging of /jobs; cancel; and what the OpenAPI document says about the new routes."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.support import Api, api_fixture, fleet_doc, settings_fixture  # noqa: F401 - fixtures

SQLITE_ONLY = pytest.mark.parametrize("db", ["sqlite"], indirect=True)
NEW_PREFIXES = (
    "/api/v1/plan",
    "/api/v1/ha",
    "/api/v1/sim",
    "/api/v1/jobs",
    "/api/v1/config",
    "/api/v1/health",
    "/api/v1/sprawl",
    "/api/v1/cost",
)


def _consolidate(api: Api, **extra: Any) -> Any:
    body = {"fleet": fleet_doc("small_cluster.yaml"), "mode": "heuristic", **extra}
    return api.post("/api/v1/plan/consolidate", body, token=True)


@SQLITE_ONLY
def test_job_goes_queued_running_succeeded_with_its_result(api: Api) -> None:
    """A simulation day takes seconds: the job is seen running before it succeeds."""
    r = api.post("/api/v1/sim/runs", {"policy": "thr-mmt-0.8", "day": "20110303"}, token=True)
    assert r.status_code == 202
    queued = r.json()
    assert queued["state"] == "queued" and queued["result"] is None
    assert queued["submitted_by"] == "tests" and queued["kind"] == "sim.run"
    running = api.wait(queued["id"], until=("running", "succeeded", "failed"))
    assert running["state"] == "running", running
    assert running["started_at"] is not None and running["finished_at"] is None
    done = api.wait(queued["id"])
    assert done["state"] == "succeeded" and done["progress"] == 1.0 and done["error"] is None
    assert done["result"]["day"] == "20110303" and done["result"]["energy_kwh"] > 0
    assert done["created_at"] <= done["started_at"] <= done["finished_at"]


def test_job_on_bad_input_fails_with_problem_details(api: Api) -> None:
    fleet = fleet_doc("small_cluster.yaml")
    fleet["vms"][0]["memory_mib"] = -5
    r = api.post("/api/v1/plan/consolidate", {"fleet": fleet}, token=True)
    assert r.status_code == 202  # the document is read by the job
    job = api.wait(r.json()["id"])
    assert job["state"] == "failed" and job["result"] is None
    error = job["error"]
    assert error["status"] == 422 and error["code"] == "validation-failed"
    assert error["type"].endswith("/validation-failed") and "memory_mib" in error["detail"]


def test_unknown_simulation_policy_fails_the_job_with_a_clear_sentence(api: Api) -> None:
    r = api.post("/api/v1/sim/runs", {"policy": "no-such-policy", "day": "20110303"}, token=True)
    job = api.wait(r.json()["id"])
    assert job["state"] == "failed"
    assert job["error"]["status"] in (404, 422) and "no-such-policy" in job["error"]["detail"]


def test_jobs_need_a_token(api: Api) -> None:
    r = api.post(
        "/api/v1/plan/consolidate", {"fleet": fleet_doc("small_cluster.yaml")}, token=False
    )
    assert r.status_code == 401 and r.headers["content-type"] == "application/problem+json"
    assert api.get("/api/v1/jobs", token=False).status_code == 401
    job = _consolidate(api).json()
    assert api.get(f"/api/v1/jobs/{job['id']}", token=False).status_code == 401
    api.wait(job["id"])


def test_request_refused_before_any_job_is_made(api: Api) -> None:
    both = {"fleet": fleet_doc("small_cluster.yaml"), "live": True}
    r = api.post("/api/v1/plan/consolidate", both, token=True)
    assert r.status_code == 422 and r.json()["code"] == "validation-failed"
    assert api.get("/api/v1/jobs", token=True).json()["total"] == 0


def test_jobs_page_by_cursor_newest_first(api: Api) -> None:
    ids = [_consolidate(api).json()["id"] for _ in range(5)]
    for job_id in ids:
        assert api.wait(job_id)["state"] == "succeeded"
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = api.get("/api/v1/jobs", token=True, **params).json()
        assert page["total"] == 5 and len(page["items"]) <= 2
        seen += [j["id"] for j in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3 and seen == list(reversed(ids))
    filtered = api.get("/api/v1/jobs", token=True, state="failed").json()
    assert filtered["total"] == 0 and filtered["items"] == []
    bad = api.get("/api/v1/jobs", token=True, cursor="not-a-cursor")
    assert bad.status_code == 422 and bad.json()["code"] == "validation-failed"


def test_cancel_a_finished_job_is_a_conflict_and_unknown_is_not_found(api: Api) -> None:
    job = api.wait(_consolidate(api).json()["id"])
    r = api.client.post(f"/api/v1/jobs/{job['id']}/cancel", headers=api.auth)
    assert r.status_code == 409 and r.json()["code"] == "conflict"
    missing = api.get("/api/v1/jobs/0123456789abcdef", token=True)
    assert missing.status_code == 404 and missing.json()["code"] == "not-found"


def test_new_routes_document_models_and_problem_errors(api: Api) -> None:
    doc = api.get("/openapi.json").json()
    checked = 0
    for path, item in doc["paths"].items():
        if not path.startswith(NEW_PREFIXES):
            continue
        for method, op in item.items():
            responses = op["responses"]
            good = [s for s in responses if s.startswith("2")]
            assert good, f"{method} {path} documents no success"
            for status in good:
                content = responses[status]["content"]["application/json"]["schema"]
                assert "$ref" in content, f"{method} {path} {status} has no response model"
            errors = [s for s in responses if s[0] in "45"]
            assert errors, f"{method} {path} documents no error"
            for status in errors:
                assert list(responses[status]["content"]) == ["application/problem+json"]
            if "requestBody" in op:  # the server refuses a body over its limit
                assert "413" in responses, f"{method} {path} does not document 413"
            if method == "post" and path.endswith(("/consolidate", "/runs", "/sprawl/report")):
                assert "202" in responses and "401" in responses
            checked += 1
    assert checked >= 22
    job = doc["components"]["schemas"]["JobPublic"]["properties"]
    assert job["state"]["$ref"].endswith("/JobState")
    assert doc["components"]["schemas"]["JobState"]["enum"] == [
        "queued", "running", "succeeded", "failed", "cancelled",
    ]  # fmt: skip
    assert job["created_at"]["format"] == "date-time"
