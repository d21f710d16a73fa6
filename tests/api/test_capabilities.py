"""Every CLI capability over REST gives the CLI's answer: same service, same fleet, same numbers.

Each test runs ``corral ... -o json`` (the real CLI, in-process) on a fixture fleet
file and posts the same file's document to the API, then compares the two.
"""

from __future__ import annotations

import csv
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from corral.config import Settings
from corral.inventory.service import Inventory
from tests.api.support import FLEETS, Api, api_fixture, cli_json, fleet_doc, settings_fixture  # noqa: F401 - fixtures

SMALL = str(FLEETS / "small_cluster.yaml")
SQLITE_ONLY = pytest.mark.parametrize("db", ["sqlite"], indirect=True)


def _without_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_none(v) for v in value]
    return value


def _history_points() -> list[dict[str, Any]]:
    with (FLEETS / "history_small_cluster.csv").open(newline="") as fh:
        return [
            {**row, "timestamp": float(row["timestamp"]), "value": float(row["value"])}
            for row in csv.DictReader(fh)
        ]


def test_place_equals_cli(api: Api) -> None:
    cli = cli_json("plan", "place", "-f", SMALL)
    rest = api.ok("/api/v1/plan/place", {"fleet": fleet_doc("small_cluster.yaml")})
    assert _without_none(rest) == cli
    assert rest["outcomes"][0]["status"] == "placed"


def test_place_new_vms_not_atomic_equals_cli(api: Api) -> None:
    cli = cli_json(
        "plan", "place", "-f", SMALL, "--new", "big:16:1024", "--new", "x:2:2048", "--no-atomic"
    )
    body = {
        "fleet": fleet_doc("small_cluster.yaml"),
        "new": [
            {"name": "big", "vcpus": 16, "memory_mib": 1024},
            {"name": "x", "vcpus": 2, "memory_mib": 2048},
        ],
        "atomic": False,
    }
    rest = api.ok("/api/v1/plan/place", body)
    assert _without_none(rest) == cli
    assert {o["status"] for o in rest["outcomes"]} == {"placed", "unschedulable"}


def test_evacuate_equals_cli(api: Api) -> None:
    cli = cli_json("plan", "evacuate", "-f", SMALL, "--host", "h2")
    rest = api.ok(
        "/api/v1/plan/evacuate", {"fleet": fleet_doc("small_cluster.yaml"), "hosts": ["h2"]}
    )
    assert rest == cli and len(rest["moves"]) == 3


def test_rebalance_equals_cli(api: Api) -> None:
    cli = cli_json("plan", "rebalance", "-f", str(FLEETS / "hotspot.yaml"))
    rest = api.ok("/api/v1/plan/rebalance", {"fleet": fleet_doc("hotspot.yaml")})
    assert rest == cli and rest["max_load_after"] < rest["max_load_before"]


def test_whatif_equals_cli(api: Api) -> None:
    cli = cli_json(
        "plan", "whatif", "-f", SMALL,
        "--add", "3:2:4096", "--remove-host", "h6", "--reserve", "erp:2:2:2048",
    )  # fmt: skip
    body = {
        "fleet": fleet_doc("small_cluster.yaml"),
        "add": [{"count": 3, "vcpus": 2, "memory_mib": 4096}],
        "remove_hosts": ["h6"],
        "reserve": [{"project": "erp", "count": 2, "vcpus": 2, "memory_mib": 2048}],
    }
    rest = api.ok("/api/v1/plan/whatif", body)
    assert rest == cli and rest["after"]["hosts"] == 5


def test_forecast_equals_cli(api: Api) -> None:
    cli = cli_json(
        "plan", "forecast", "-f", SMALL, "--history", str(FLEETS / "history_small_cluster.csv")
    )
    body = {"fleet": fleet_doc("small_cluster.yaml"), "history": _history_points()}
    rest = api.ok("/api/v1/plan/forecast", body)
    assert rest["failures"] == 1 and rest["horizon_days"] == 365.0
    got = rest["exhaustions"]
    for row in (*got, *cli):  # the same instant, written Z (API) or +00:00 (CLI)
        if row["exhausted_at"]:
            row["exhausted_at"] = datetime.fromisoformat(row["exhausted_at"])
    assert got == cli
    assert any(r["days_to_exhaustion"] for r in got)


@pytest.mark.parametrize(
    ("args", "body"),
    [
        (["--policy", "exact", "-k", "2"], {"policy": "exact", "failures": 2}),
        (["--policy", "slots"], {"policy": "slots"}),
        (["--policy", "percentage"], {"policy": "percentage"}),
    ],
)
def test_ha_check_equals_cli(api: Api, args: list[str], body: dict[str, Any]) -> None:
    cli = cli_json("ha", "check", "-f", SMALL, *args)
    rest = api.ok("/api/v1/ha/check", {"fleet": fleet_doc("small_cluster.yaml"), **body})
    flat = {k: v for k, v in rest.items() if k not in ("details", "growth")} | rest["details"]
    assert flat == cli and rest["growth"] is None


def test_ha_check_growth_equals_cli(api: Api) -> None:
    guide = str(FLEETS / "vsphere_guide.yaml")
    cli = cli_json(
        "ha", "check", "-f", guide, "--policy", "slots",
        "--growth-per-month", "0.05", "--as-of", "2026-11-21",
    )  # fmt: skip
    body = {"policy": "slots", "growth_per_month": 0.05, "as_of": "2026-11-21"}
    rest = api.ok("/api/v1/ha/check", {"fleet": fleet_doc("vsphere_guide.yaml"), **body})
    growth = rest["growth"]
    assert growth["breaks_on"] == cli["ha_guarantee_breaks_on"] is not None
    assert (growth["growth_per_month"], growth["source"]) == (0.05, cli["growth_source"])
    assert rest["tolerated_host_failures"] == cli["tolerated_host_failures"]


def test_consolidate_job_result_equals_cli(api: Api) -> None:
    cli = cli_json("plan", "consolidate", "-f", SMALL, "--mode", "heuristic")
    job = api.job(
        "/api/v1/plan/consolidate", {"fleet": fleet_doc("small_cluster.yaml"), "mode": "heuristic"}
    )
    assert job["state"] == "succeeded", job
    cli.pop("lower_bound_hosts")  # the CLI repeats lower_bound.hosts at the top
    assert job["result"] == cli
    assert job["result"]["active_hosts_after"] < job["result"]["active_hosts_before"]


@SQLITE_ONLY
def test_sim_run_job_result_equals_cli(api: Api, settings: Settings) -> None:
    assert settings.shared_data is not None
    order = settings.shared_data / "published-results" / "cloudsim-vm-order" / "20110303.txt"
    cli = cli_json(
        "sim", "consolidate",
        "--planetlab-dir", str(settings.shared_data / "planetlab"), "--day", "20110303",
        "--order-file", str(order),
        "--policy", "thr-mmt-0.8",
    )  # fmt: skip
    job = api.job("/api/v1/sim/runs", {"policy": "thr-mmt-0.8", "day": "20110303"})
    assert job["state"] == "succeeded", job
    result = job["result"]
    assert result.pop("runtime_s") > 0 and cli.pop("runtime_s") > 0  # wall time differs
    assert result == cli
    assert result["vms"] == 1052 and result["migrations"] > 0


def test_sim_catalogue_equals_cli(api: Api, settings: Settings) -> None:
    assert settings.shared_data is not None
    days = api.get("/api/v1/sim/days", limit=3)
    assert days.status_code == 200
    page1 = days.json()
    page2 = api.get("/api/v1/sim/days", limit=10, cursor=page1["next_cursor"]).json()
    cli_days = cli_json("sim", "days", "--planetlab-dir", str(settings.shared_data / "planetlab"))
    assert [d["day"] for d in page1["items"] + page2["items"]] == [d["day"] for d in cli_days]
    assert page1["total"] == len(cli_days) == 8 and page2["next_cursor"] is None
    policies = api.get("/api/v1/sim/policies").json()
    assert {p["family"] for p in policies["items"]} == {
        r["policy"] for r in cli_json("sim", "policies")
    }


def test_config_equals_cli_and_needs_a_token(
    api: Api, inventory: Inventory, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    from corral.api.app import create_app
    from corral.config import load_settings

    monkeypatch.setenv("CORRAL_HOME", str(tmp_path / "cfg-home"))
    monkeypatch.setenv("CORRAL_SMTP_PASSWORD", "hunter2-secret")
    monkeypatch.setenv("CORRAL_DATABASE_URL", "postgresql://u:pw-secret@db.invalid/corral")
    cli = cli_json("config", "show")
    app = create_app(inventory, settings=load_settings())
    client = Api(type(api.client)(app), "")
    client.auth = api.auth
    assert client.get("/api/v1/config", token=False).status_code == 401
    rest = client.get("/api/v1/config", token=True).json()["settings"]
    assert rest == cli
    shown = str(rest)
    assert "hunter2-secret" not in shown and "pw-secret" not in shown
    assert {"name": "smtp_password", "value": "********"}.items() <= next(
        s for s in rest if s["name"] == "smtp_password"
    ).items()
    app.state.jobs.shutdown()


def test_health_ok_then_503_when_the_metrics_store_is_unreachable(
    api: Api, inventory: Inventory, settings: Settings
) -> None:
    from corral.api.app import create_app

    ok = api.get("/api/v1/health")
    assert ok.status_code == 200
    assert {c["name"]: c["status"] for c in ok.json()["checks"]} == {
        "database": "ok",
        "metrics_store": "ok",
    }
    # A VictoriaMetrics URL where nothing listens (port 9, discard): a real refused connection.
    app = create_app(
        inventory, settings=settings.with_values(metrics_url="victoriametrics://127.0.0.1:9")
    )
    down = type(api.client)(app).get("/api/v1/health", headers=api.auth)
    app.state.jobs.shutdown()
    assert down.status_code == 503
    assert down.headers["content-type"] == "application/problem+json"
    assert down.json()["code"] == "unhealthy" and "metrics_store" in down.json()["detail"]


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/plan/place",
        "/api/v1/plan/whatif",
        "/api/v1/ha/check",
        "/api/v1/cost/vms",
        "/api/v1/sprawl/findings",
    ],
)
def test_a_fleet_document_of_the_wrong_shape_is_422_not_500(api: Api, path: str) -> None:
    for fleet in ({"hosts": 5}, {"vms": "x"}, {"hosts": [], "unknown": 1}):
        extra = {"remove_hosts": ["h1"]} if path.endswith("whatif") else {}
        r = api.post(path, {"fleet": fleet, **extra}, token=True)
        assert r.status_code == 422, (path, fleet, r.text)
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["code"] == "validation-failed"


def test_rebalance_of_a_fleet_without_hosts_is_an_empty_plan(api: Api, tmp_path: Path) -> None:
    """Found by schemathesis: the engine took the hottest of no hosts (a 500)."""
    empty = {"format": "corral-fleet/1"}
    rest = api.ok("/api/v1/plan/rebalance", {"fleet": empty})
    assert rest["migrations"] == 0 and rest["steps"] == [] and rest["schedule_complete"]
    path = tmp_path / "empty.yaml"
    path.write_text("format: corral-fleet/1\n")
    assert cli_json("plan", "rebalance", "-f", str(path)) == rest
