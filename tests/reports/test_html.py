"""The HTML report: hostile names stay text, every chart is there, numbers equal the analysis."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from lxml import html as lhtml

from corral.engines.costing import CostModel
from corral.errors import ConfigError
from corral.reports.collect import ReportData
from corral.reports.html import (
    NONE_LABEL,
    ORPHANS_LABEL,
    render_html,
    waste_by_category,
    waste_by_department,
    write_html,
)
from corral.services.sprawl import live_analysis, sprawl_report
from tests.reports.conftest import (
    HOSTILE_DEPT,
    HOSTILE_OWNER,
    IMG_NAME,
    SCRIPT_NAME,
    DemoInventory,
)

CHARTS = ("chart-category", "chart-department", "chart-history")


def parse(data: ReportData) -> lhtml.HtmlElement:
    return lhtml.document_fromstring(render_html(data))


def test_hostile_names_are_text_not_markup(hostile_report: ReportData) -> None:
    text = render_html(hostile_report)
    doc = lhtml.document_fromstring(text)
    assert "<script" not in text.lower()
    assert not doc.xpath("//script | //img | //b | //i | //*[local-name()='svg'][@onload]")
    assert not [a for e in doc.iter() for a in e.attrib if a.lower().startswith("on")]
    # The names are there, as the user typed them, in the findings table.
    cells = [td.text_content() for td in doc.xpath("//section[@id='findings']//td")]
    assert SCRIPT_NAME in cells and IMG_NAME in cells
    assert HOSTILE_DEPT in cells
    # A department name closing the style element does not end it early.
    assert doc.xpath("string(//head/style)").count("</style>") == 0
    assert doc.xpath("//title")[0].text == "Corral sprawl report"
    # The owner shows up only where the report shows owners: the scorecard counts, not names.
    assert HOSTILE_OWNER not in text


def test_every_chart_is_an_accessible_svg_with_a_table(hostile_report: ReportData) -> None:
    doc = parse(hostile_report)
    for chart_id in CHARTS:
        (svg,) = doc.xpath(f"//svg[@id='{chart_id}']")
        assert svg.get("role") == "img"
        labelled = svg.get("aria-labelledby").split()
        assert labelled == [f"{chart_id}-title", f"{chart_id}-desc"]
        assert svg.xpath("./title")[0].text and svg.xpath("./desc")[0].text
        assert svg.xpath(".//rect | .//polygon")
        assert svg.xpath("ancestor::section//table")
    # The hostile department is the label of a bar, as text.
    labels = [t.text for t in doc.xpath("//svg[@id='chart-department']//text")]
    assert {HOSTILE_DEPT, NONE_LABEL, ORPHANS_LABEL} <= set(labels)


def test_headline_numbers_equal_the_analysis(hostile_report: ReportData) -> None:
    summary = hostile_report.analysis.summary()
    doc = parse(hostile_report)
    tiles = {
        t.get("data-key"): float(t.get("data-value")) for t in doc.xpath("//div[@class='tile']")
    }
    assert tiles == pytest.approx(
        {
            k: summary[k]
            for k in (
                "waste_monthly",
                "waste_yearly",
                "governance_at_risk_monthly",
                "rightsizing_monthly",
                "fleet_monthly_cost",
            )
        },
        abs=0.005,
    )
    assert summary["waste_monthly"] > 0 and summary["governance_at_risk_monthly"] > 0


def test_chart_figures_add_up_to_the_totals(hostile_report: ReportData) -> None:
    a = hostile_report.analysis
    by_cat = waste_by_category(a)
    waste = [
        b
        for b in by_cat
        if b.label in {t.category.value for t in a.totals if t.is_waste} | {"right-sizing"}
    ]
    assert sum(sum(b.values) for b in waste) == pytest.approx(
        a.monthly_waste + a.rightsizing_monthly_saving
    )
    by_dept = waste_by_department(a, hostile_report.departments)
    assert sum(sum(b.values) for b in by_dept) == pytest.approx(
        a.monthly_waste + a.rightsizing_monthly_saving
    )
    # Category table rows show the engine's totals to the cent.
    doc = parse(hostile_report)
    rows = {tr[0].text: tr[2].text for tr in doc.xpath("//section[@id='by-category']//tbody/tr")}
    for t in a.totals:
        assert rows[t.category.value] == f"${t.monthly:,.2f}"
    # The history table's last row is the last point of the history.
    last = doc.xpath("//section[@id='over-time']//tbody/tr")[-1]
    point = hostile_report.history[-1]
    assert last[-2].text == f"${point.waste:,.0f}" and last[-1].text == f"${point.at_risk:,.0f}"


def test_scorecard_in_the_page(hostile_report: ReportData) -> None:
    doc = parse(hostile_report)
    cards = doc.xpath("//section[@id='scorecard']//article")
    assert [c.get("data-status") for c in cards] == [s.status.value for s in hostile_report.signs]
    assert len(cards) == 5
    assert all(c.xpath(".//p[@class='basis']")[0].text for c in cards)


def test_write_html_whole_or_not_at_all(hostile_report: ReportData, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        write_html(tmp_path / "missing" / "r.html", hostile_report)
    with pytest.raises(ConfigError, match="it is a folder"):
        write_html(tmp_path, hostile_report)
    out = write_html(tmp_path / "r.html", hostile_report)
    assert out.read_text("utf-8").startswith("<!DOCTYPE html>")
    assert stat.S_IMODE(out.stat().st_mode) == 0o600  # owners and departments: private
    assert [p.name for p in tmp_path.iterdir()] == ["r.html"]  # no temporary file left


def test_live_report_of_a_synced_demo(
    demo_inventory: DemoInventory, default_model: CostModel
) -> None:
    inv = demo_inventory.inv
    data = sprawl_report(inv, None, default_model, days=30)
    assert data.analysis.summary() == live_analysis(inv, None, default_model, days=30).summary()
    assert data.history and data.history[-1].at == inv.clock()
    assert sum(r.vms for r in data.chargeback) == data.analysis.vms
    assert HOSTILE_DEPT in {r.key for r in data.chargeback}
    doc = parse(data)
    cells = [td.text_content() for td in doc.xpath("//section[@id='chargeback']//td")]
    assert HOSTILE_DEPT in cells and not doc.xpath("//b")
    # Orphaned disks are billed to no department: their own row, with the waste they hold.
    orphans = sum(
        f.monthly_cost_held for f in data.analysis.findings if f.category.value == "orphaned_disk"
    )
    assert orphans > 0
    assert cells[cells.index(ORPHANS_LABEL) + 4] == f"${orphans:,.2f}"
    for chart_id in CHARTS:
        assert doc.xpath(f"//svg[@id='{chart_id}']//rect | //svg[@id='{chart_id}']//polygon")


def test_insufficient_data_counted_by_reason(hostile_report: ReportData) -> None:
    a = hostile_report.analysis
    doc = parse(hostile_report)
    rows = doc.xpath("//section[@id='insufficient']//tbody/tr")
    counted = {(tr[0].text, tr[1].text): int(tr[2].text) for tr in rows}
    assert sum(counted.values()) == len(a.insufficient) + len(a.rightsizing_insufficient) > 0
    assert counted[("rightsizing", "no metrics for this VM")] == len(a.rightsizing_insufficient)


def test_reclamation_section_shows_cases_and_savings(hostile_report: ReportData) -> None:
    """The cases of the workflow, with money saved, escaped like every other value."""
    from dataclasses import replace as with_

    from corral.engines.reclaim import State
    from corral.reports.collect import ReclaimedCase
    from corral.reports.html import render_html

    base = hostile_report
    case = ReclaimedCase(
        id=3,
        vm="<b>gone</b>",
        vm_uuid="00000000-0000-0000-0000-000000000003",
        state=State.deleted,
        category="powered_off",
        owner=None,
        currency="USD",
        monthly_cost=120.0,
        realized=45.5,
        saving_now_monthly=120.0,
    )
    page = render_html(with_(base, reclamation=[case]))
    assert "1 cases: 1 deleted" in page and "$45.50" in page and "&lt;b&gt;gone&lt;/b&gt;" in page
    assert "No VM has been flagged yet" in render_html(base)
