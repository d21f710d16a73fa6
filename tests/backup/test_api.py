"""Backup over REST gives the CLI's answers: the policy, the plan (a job), coverage and patch
windows on the same fleet document; tokens where the routes need them; problems as 422."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.support import FLEETS, Api, api_fixture, cli_json, fleet_doc, settings_fixture  # noqa: F401 - fixtures

SMALL = str(FLEETS / "backup_small.yaml")
pytestmark = pytest.mark.parametrize("db", ["sqlite"], indirect=True)


def _no_seconds(doc: dict[str, Any]) -> dict[str, Any]:
    doc["summary"].pop("seconds")
    return doc


def test_policy_needs_a_token_and_equals_the_cli(api: Api) -> None:
    assert api.get("/api/v1/backup/policy").status_code == 401
    r = api.get("/api/v1/backup/policy", token=True)
    assert r.status_code == 200, r.text
    assert r.json() == cli_json("backup", "policy")
    assert {t["tier"] for t in r.json()["tiers"]} == {
        "replicated",
        "restart",
        "backup-only",
        "none",
    }


def test_plan_job_result_equals_the_cli(api: Api) -> None:
    body = {"fleet": fleet_doc("backup_small.yaml")}
    assert api.post("/api/v1/backup/plan", body).status_code == 401
    job = api.job("/api/v1/backup/plan", body)
    assert job["state"] == "succeeded", job
    assert job["kind"] == "backup.plan"
    assert _no_seconds(job["result"]) == _no_seconds(cli_json("backup", "plan", "-f", SMALL))
    assert [m["vm"] for m in job["result"]["misses"]] == ["batch-01", "etl-02"]


def test_coverage_equals_the_cli(api: Api) -> None:
    body = {"fleet": fleet_doc("backup_small.yaml")}
    assert api.post("/api/v1/backup/coverage", body).status_code == 401
    rest = api.ok("/api/v1/backup/coverage", body, token=True)
    assert rest == cli_json("backup", "coverage", "-f", SMALL)
    assert {u["vm"] for u in rest["uncovered"]} == {"batch-01", "etl-02", "spare-01"}


def test_patch_windows_equal_the_cli(api: Api) -> None:
    body = {"fleet": fleet_doc("backup_small.yaml"), "window": "02:00-04:00", "days": ["sat"]}
    rest = api.ok("/api/v1/backup/patch-windows", body)
    cli = cli_json(
        "backup", "patch-windows", "-f", SMALL, "--window", "02:00-04:00", "--day", "sat"
    )
    assert rest == cli
    assert {s["day"] for s in rest["slots"]} == {"sat"}


@pytest.mark.parametrize(
    "fleet",
    [
        {"format": "corral-fleet/1", "datastores": [{"name": "d", "speed": 1}]},
        {"format": "corral-fleet/1", "datastores": "many"},
        {"hosts": 5},
    ],
)
def test_a_bad_fleet_is_a_422_problem(api: Api, fleet: dict[str, Any]) -> None:
    r = api.post("/api/v1/backup/coverage", {"fleet": fleet}, token=True)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"


def test_a_bad_window_is_a_422_problem(api: Api) -> None:
    body = {"fleet": fleet_doc("backup_small.yaml"), "window": "late"}
    r = api.post("/api/v1/backup/patch-windows", body)
    assert r.status_code == 422 and r.json()["code"] == "validation-failed"
    assert "window must look like 22:00-06:00" in r.json()["detail"]
