"""Sign No.5 scored from the backup plan: on a fleet file, and in the live report (HTML too)."""

from __future__ import annotations

from pathlib import Path

from lxml import html as lhtml

from corral.engines.backup import parse_policy
from corral.engines.costing import CostModel
from corral.reports.collect import backup_coverage
from corral.reports.html import render_html
from corral.reports.scorecard import ScorecardInputs, Status, scorecard
from corral.services.backup import Policy
from corral.services.fleet import live_fleet, read_fleet_file
from corral.services.sprawl import sprawl_report
from tests.reports.conftest import NOW, DemoInventory

FLEETS = Path(__file__).resolve().parents[1] / "fixtures" / "fleets"


def test_fleet_file_coverage_is_the_signs_evidence() -> None:
    """backup_small.yaml: batch-01 changes faster than h2 copies, etl-02 finds no room on h2,
    spare-01 has no host, build-01 is rebuilt from its template: 3 of 8 uncovered."""
    cov = backup_coverage(read_fleet_file(FLEETS / "backup_small.yaml"), Policy())
    assert (cov.vms, cov.rebuilt, cov.uncovered) == (9, 1, 3)
    assert (cov.changes_too_fast, cov.no_room, cov.no_host) == (1, 1, 1)
    # h1 200 MiB/s and h2 20 MiB/s by day, 100 MiB/s 20:00-08:00: what they copy in a day.
    assert cov.daily_budget_gib == (200 * 24 + 20 * 12 + 100 * 12) * 3600 / 1024
    assert 0 < cov.daily_gib < cov.daily_budget_gib  # enough in total, not where it is needed
    (sign,) = [s for s in scorecard(ScorecardInputs(NOW, [], backup=cov)) if s.key == "backup"]
    assert (sign.status, sign.figures["uncovered_share"]) == (Status.alert, 0.375)


def test_live_report_scores_backups_against_the_hosts_budgets(
    demo_inventory: DemoInventory, default_model: CostModel
) -> None:
    """The live report plans backups under the policy it is given: with the built-in tiers
    every VM of the demo is covered (ok); one VM asking for a 30-minute RPO inside a night
    window cannot be held (warning, 1 of 27); 1 MiB/s per host leaves most uncovered (alert)."""
    inv = demo_inventory.inv
    sign = sprawl_report(inv, None, default_model, days=30).signs[4]
    assert (sign.key, sign.status) == ("backup", Status.ok)
    assert (sign.figures["vms_to_back_up"], sign.figures["without_backup_meeting_rpo"]) == (27, 0)

    one = min(v.name for v in live_fleet(inv).fleet.vms)
    greedy = {"vms": {one: {"rpo": "30m", "window": "22:00-06:00"}}}
    data = sprawl_report(
        inv, None, default_model, days=30, backup_policy=parse_policy(greedy, "test policy")
    )
    sign = data.signs[4]
    assert sign.status is Status.warning
    assert (sign.figures["without_backup_meeting_rpo"], sign.figures["uncovered_no_room"]) == (1, 1)
    assert sign.figures["uncovered_share"] == round(1 / 27, 3)
    card = lhtml.document_fromstring(render_html(data)).xpath(
        "//section[@id='scorecard']//article"
    )[4]
    assert card.get("data-status") == "warning"
    assert "backup plan of the live inventory" in card.text_content()

    tiny = parse_policy({"planner": {"host_mib_s": 1}}, "test policy")
    sign = sprawl_report(inv, None, default_model, days=30, backup_policy=tiny).signs[4]
    uncovered = sign.figures["without_backup_meeting_rpo"]
    assert isinstance(uncovered, int) and uncovered / 27 > 0.10
    assert sign.status is Status.alert
    reasons = [sign.figures[f"uncovered_{r}"] for r in ("no_room", "changes_too_fast", "no_host")]
    assert sum(int(r) for r in reasons) == uncovered
    assert sign.figures["daily_host_budget_gib"] == round(2 * 24 * 3600 / 1024, 1)  # 2 x 1 MiB/s
