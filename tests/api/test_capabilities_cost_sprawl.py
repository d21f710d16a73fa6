"""Cost and sprawl over REST give the CLI's answers on the same fleet file and live inventory.

The CLI rounds money to cents when it prints; the API gives the service's
figures, so money is compared rounded to cents.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from fastapi.testclient import TestClient

from corral.api.app import create_app
from corral.config import Settings
from corral.hypervisor.uri import HostAccess
from corral.inventory.service import Inventory
from corral.security.secrets import SecretBox
from corral.security.token_store import TokenStore
from corral.store.db import Database
from tests.api.support import SPRAWL, Api, api_fixture, cli_json, document, settings_fixture  # noqa: F401 - fixtures

COSTS = SPRAWL / "cost_inventory.yaml"
DETECTORS = SPRAWL / "detectors_inventory.yaml"
NODES = Path(__file__).resolve().parents[1] / "fixtures" / "nodes"
SQLITE_ONLY = pytest.mark.parametrize("db", ["sqlite"], indirect=True)


def _doc(path: Path) -> dict[str, Any]:
    return document(path)


def _cents(lines: dict[str, float]) -> dict[str, float]:
    return {k: round(v, 2) for k, v in lines.items()}


def test_cost_per_vm_equals_cli(api: Api) -> None:
    cli = cli_json("cost", "vm", "-i", str(COSTS))
    rest = api.ok("/api/v1/cost/vms", {"fleet": _doc(COSTS)})
    got = [{"vm": v["vm"], "state": v["state"], **_cents(v["lines"])} for v in rest["vms"]]
    assert got == cli
    totals = {v["vm"]: v["lines"]["total"] for v in rest["vms"]}
    assert round(totals["win-a"], 2) == cli[0]["total"]
    assert rest["total"] == pytest.approx(sum(totals.values()))


@pytest.mark.parametrize("by", ["owner", "department", "project"])
def test_chargeback_equals_cli_and_needs_a_token(api: Api, by: str) -> None:
    cli = cli_json("cost", "chargeback", "-i", str(COSTS), "--by", by)
    body = {"fleet": _doc(COSTS), "by": by}
    assert api.post("/api/v1/cost/chargeback", body, token=False).status_code == 401
    rest = api.ok("/api/v1/cost/chargeback", body, token=True)
    assert rest["by"] == by
    assert [{by: r["key"], "vms": r["vms"], **_cents(r["lines"])} for r in rest["rows"]] == cli


def test_licences_equal_cli(api: Api) -> None:
    cli = cli_json("cost", "licences", "-i", str(COSTS))
    rest = api.ok("/api/v1/cost/licences", {"fleet": _doc(COSTS)})
    for row in rest["usage"]:
        row["monthly_cost"] = round(row["monthly_cost"], 2)
    assert rest["usage"] == cli["usage"]
    for row in rest["suggestions"]:
        row["monthly_saving"] = round(row["monthly_saving"], 2)
    assert rest["suggestions"] == cli["suggestions"]


def _cli_finding(f: dict[str, Any]) -> dict[str, Any]:
    return {
        "subject": f["subject_name"],
        "category": f["category"],
        "monthly": round(f["monthly_cost_held"], 2),
        "confidence": f["confidence"],
        "also": f["also_matched"],
        "evidence": f["evidence"]["measures"],
        "action": f["suggested_action"],
    }


def test_findings_equal_cli_and_need_a_token(api: Api) -> None:
    cli = cli_json("sprawl", "findings", "-i", str(DETECTORS))
    body = {"fleet": _doc(DETECTORS)}
    assert api.post("/api/v1/sprawl/findings", body, token=False).status_code == 401
    rest = api.ok("/api/v1/sprawl/findings", body, token=True)
    got = [_cli_finding(f) for f in rest["findings"]]
    got += [
        {
            "subject": i["subject_name"],
            "category": f"insufficient:{i['detector']}",
            "evidence": i["reason"],
        }
        for i in rest["insufficient"]
    ]
    assert got == cli
    assert {f["category"] for f in rest["findings"]} >= {"powered_off", "no_owner"}


def test_scenario_equals_cli(api: Api) -> None:
    cli = cli_json("sprawl", "scenario", "--vms", "60", "--seed", "3")
    rest = api.ok("/api/v1/sprawl/scenario", {"vms": 60, "seed": 3})
    head = {k: v for k, v in rest["summary"].items() if k != "categories"}
    assert {**head, "seed": 3} == cli["summary"]
    assert rest["summary"]["categories"] == cli["by_category"]
    assert [(a["name"], a["value"]) for a in rest["assumptions"]] == [
        (a["assumption"], a["value"]) for a in cli["assumptions"]
    ]


def test_detectors_page_equals_cli(api: Api) -> None:
    cli = cli_json("sprawl", "detectors")
    first = api.get("/api/v1/sprawl/detectors", limit=4).json()
    rest = (
        first["items"]
        + api.get("/api/v1/sprawl/detectors", cursor=first["next_cursor"]).json()["items"]
    )
    assert first["total"] == len(cli) == len(rest)
    as_cli = {
        (
            d["detector"],
            d["category"],
            d["parameter"] or "",
            "" if d["default"] is None else d["default"],
        )
        for d in rest
    }
    assert as_cli == {(r["detector"], r["category"], r["parameter"], r["default"]) for r in cli}


@SQLITE_ONLY
def test_live_report_job_and_live_cost_equal_cli(
    db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The live inventory (a synced test-driver host) through the API and the CLI alike."""
    import shutil

    home = tmp_path / "home"
    nodes = home / "nodes"
    shutil.copytree(NODES, nodes)
    url = db.url.render_as_string(hide_password=False)
    settings = Settings(home=home, database_url=url)
    inventory = Inventory(db, SecretBox(Fernet.generate_key()), access=HostAccess(node_dir=nodes))
    inventory.add_host("host-a", f"test://{nodes / 'host-a.xml'}")
    inventory.sync()
    monkeypatch.setenv("CORRAL_HOME", str(home))
    monkeypatch.setenv("CORRAL_DATABASE_URL", url)
    app = create_app(inventory, settings=settings)
    api = Api(TestClient(app), TokenStore(db).create("live"))
    try:
        cli_cost = cli_json("cost", "vm", "--live")
        rest_cost = api.ok("/api/v1/cost/vms", {"live": True})
        got = [{"vm": v["vm"], "state": v["state"], **_cents(v["lines"])} for v in rest_cost["vms"]]
        assert got == cli_cost and len(got) >= 2

        cli = cli_json("sprawl", "report")
        job = api.job("/api/v1/sprawl/report", {"days": 30})
        assert job["state"] == "succeeded", job
        result = job["result"]
        head = {k: v for k, v in result["summary"].items() if k != "categories"}
        by_category = {
            t["category"]: {"count": t["count"], "monthly": t["monthly"]}
            for t in result["summary"]["categories"]
        }
        assert {**head, "by_category": by_category} == cli["summary"]
        assert [_cli_finding(f) for f in result["findings"]] == cli["findings"]
        assert [(s["key"], s["status"]) for s in result["scorecard"]] == [
            (s["key"], s["status"]) for s in cli["scorecard"]
        ]
        assert len(result["waste_over_time"]) == len(cli["waste_over_time"])
    finally:
        app.state.jobs.shutdown(wait=True)


@SQLITE_ONLY
def test_bitbrains_job_equals_cli(api: Api, settings: Settings) -> None:
    assert settings.shared_data is not None
    cli = cli_json(
        "sprawl", "bitbrains", "--data-dir", str(settings.shared_data / "bitbrains-rnd"),
        "--month", "2013-7", "--limit", "40",
    )  # fmt: skip
    job = api.job("/api/v1/sprawl/bitbrains", {"month": "2013-7", "limit": 40})
    assert job["state"] == "succeeded", job
    result = job["result"]
    head = {
        k: v for k, v in cli["summary"].items() if k not in ("assumed_disk_gb_per_vm", "window")
    }
    assert result["summary"] == head and result["summary"]["vms"] == 40
    assert [(f["subject"], f["category"]) for f in result["findings"]] == [
        (f["subject"], f["category"]) for f in cli["findings"]
    ]
    assert result["assumed_disk_gb"] == cli["summary"]["assumed_disk_gb_per_vm"] == 50.0
