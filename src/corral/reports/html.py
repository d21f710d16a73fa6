"""The standalone HTML sprawl report: one file a manager can open, with no network at all.

Why lxml elements and not string templates: every value (VM names, owners and
departments are user input) becomes element text or an attribute, which the
serializer escapes, so a VM named ``<script>`` shows as text and runs nothing.
CSS is inline, charts are inline SVG (reports/templates), there is no JavaScript. Each
chart has a <title> and <desc> and its numbers are repeated in a table.

``corral.reports.collect`` gathers a ``ReportData``; ``render_html`` is a pure
function of that data and this module reads nothing else.
"""

from __future__ import annotations

import os
import tempfile
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lxml import html

from corral.engines.costing import UNASSIGNED
from corral.engines.sprawl import GOVERNANCE, Category, Finding, SprawlAnalysis
from corral.errors import ConfigError
from corral.reports.collect import ReportData
from corral.reports.history import HISTORY_CATEGORIES
from corral.reports.templates.charts import (
    BLUE,
    LIGHT_BLUE,
    RISK_COLOUR,
    Bar,
    bar_chart,
    history_chart,
)
from corral.reports.templates.elements import Child, Element, el, money, pct, section, table
from corral.reports.templates.style import CSS

NONE_LABEL = "(none)"  # VMs without a department
ORPHANS_LABEL = "(no VM: orphaned disks)"
RIGHTSIZING = "right-sizing"


def html_target(path: Path) -> Path:
    """The absolute path the report will be written to; refuses a folder that does not exist."""
    path = path.expanduser().resolve()
    if path.is_dir():
        raise ConfigError(
            f"cannot write {path}: it is a folder; give a file name such as report.html."
        )
    if not path.parent.is_dir():
        raise ConfigError(f"cannot write {path}: folder {path.parent} does not exist; create it.")
    return path


def write_html(path: Path, data: ReportData) -> Path:
    """Write the report to ``path`` whole or not at all (temporary file, then rename)."""
    path = html_target(path)
    text = render_html(data)
    fd, tmp = tempfile.mkstemp(prefix=".sprawl-", suffix=".html", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, 0o600)  # the report names owners and departments: the owner's only
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


# --- what the charts show -----------------------------------------------------------------------


def waste_by_category(analysis: SprawlAnalysis) -> list[Bar]:
    """Waste categories, right-sizing, then governance (money at risk), each VM counted once."""
    totals = analysis.totals
    waste = [Bar(t.category.value, (t.monthly,), t.count, (BLUE,)) for t in totals if t.is_waste]
    reclaimed = {f.subject for f in analysis.findings if f.category not in GOVERNANCE}
    sized = sum(
        1 for r in analysis.rightsizing if r.monthly_saving > 0 and r.vm_uuid not in reclaimed
    )
    saving = analysis.rightsizing_monthly_saving
    waste.append(Bar(RIGHTSIZING, (saving,), sized, (LIGHT_BLUE,)))
    risk = [
        Bar(t.category.value, (t.monthly,), t.count, (RISK_COLOUR,))
        for t in totals
        if not t.is_waste
    ]
    return waste + risk


def waste_by_department(
    analysis: SprawlAnalysis, departments: Mapping[str, str | None]
) -> list[Bar]:
    """Per department: reclaimable waste and right-sizing savings; they sum to the total waste."""
    reclaim: dict[str, float] = {}
    counts: Counter[str] = Counter()
    for f in (f for f in analysis.findings if f.category not in GOVERNANCE):
        orphan = f.category is Category.orphaned_disk
        dept = ORPHANS_LABEL if orphan else _department(departments.get(f.subject))
        reclaim[dept] = reclaim.get(dept, 0.0) + f.monthly_cost_held
        counts[dept] += 1
    reclaimed = {f.subject for f in analysis.findings if f.category not in GOVERNANCE}
    sized: dict[str, float] = {}
    for r in analysis.rightsizing:
        if r.vm_uuid not in reclaimed and r.monthly_saving > 0:
            dept = _department(departments.get(r.vm_uuid))
            sized[dept] = sized.get(dept, 0.0) + r.monthly_saving
    names = sorted(set(reclaim) | set(sized), key=lambda d: -(reclaim.get(d, 0) + sized.get(d, 0)))
    colours = (BLUE, LIGHT_BLUE)
    return [Bar(d, (reclaim.get(d, 0.0), sized.get(d, 0.0)), counts[d], colours) for d in names]


def _department(value: str | None) -> str:
    return (value or "").strip() or NONE_LABEL


# --- the page -----------------------------------------------------------------------------------


def render_html(data: ReportData) -> str:
    """The whole report as one HTML document (inline CSS and SVG, no script)."""
    a = data.analysis
    body = el(
        "body",
        None,
        el(
            "header",
            None,
            el("h1", None, data.title),
            el(
                "p",
                {"class": "sub"},
                f"{a.vms} VMs · generated {data.generated_at:%Y-%m-%d %H:%M} UTC · "
                f"money per month in {a.currency} unless marked yearly",
            ),
        ),
        el("main", None, *_sections(data)),
        el(
            "footer",
            None,
            "Corral · every VM is counted once, in its highest-value category · "
            "governance findings (no owner, no purpose) are money at risk, not waste.",
        ),
    )
    root = el(
        "html",
        {"lang": "en"},
        el(
            "head",
            None,
            el("meta", {"charset": "utf-8"}),
            el("meta", {"name": "viewport", "content": "width=device-width, initial-scale=1"}),
            el("title", None, data.title),
            el("style", None, CSS),
        ),
        body,
    )
    out = html.tostring(root, doctype="<!DOCTYPE html>", method="html", encoding="unicode")
    return str(out)


def _sections(data: ReportData) -> list[Element]:
    return [
        _headline(data),
        _scorecard_section(data),
        _category_section(data),
        _department_section(data),
        _history_section(data),
        _findings_section(data),
        _rightsizing_section(data),
        _reclamation_section(data),
        _chargeback_section(data),
        _licence_section(data),
        _insufficient_section(data),
    ]


def _section(section_id: str, title: str, *children: Child) -> Element:
    return section(title, *children, section_id=section_id)


def _headline(data: ReportData) -> Element:
    s, cur = data.analysis.summary(), data.analysis.currency
    tiles = [
        ("waste_monthly", "Waste per month", s["waste_monthly"], "reclaimable + right-sizing"),
        ("waste_yearly", "Waste per year", s["waste_yearly"], "12 times the monthly waste"),
        (
            "governance_at_risk_monthly",
            "Money at risk per month",
            s["governance_at_risk_monthly"],
            "VMs without owner or purpose",
        ),
        ("rightsizing_monthly", "Right-sizing savings", s["rightsizing_monthly"], "per month"),
        ("fleet_monthly_cost", "Fleet cost per month", s["fleet_monthly_cost"], "every VM priced"),
    ]
    cells = [
        el(
            "div",
            {"class": "tile", "data-key": key, "data-value": f"{value:.2f}"},
            el("div", {"class": "label"}, label),
            el("div", {"class": "figure"}, money(value, cur)),
            el("div", {"class": "note"}, note),
        )
        for key, label, value, note in tiles
    ]
    share = s["waste_monthly"] / s["fleet_monthly_cost"] if s["fleet_monthly_cost"] else 0.0
    return _section(
        "headline",
        "Headline",
        el("div", {"class": "tiles"}, *cells),
        el(
            "p",
            None,
            f"Waste is {pct(share)} of the fleet's monthly cost. Reclaiming it frees "
            f"{s['reclaimable_vcpus']} vCPUs, {s['reclaimable_memory_gib']} GiB of memory and "
            f"{s['reclaimable_storage_gb']:,} GB of storage.",
        ),
    )


STATUS_LABEL = {"ok": "OK", "warning": "Warning", "alert": "Alert", "cannot-tell": "Cannot tell"}


def _scorecard_section(data: ReportData) -> Element:
    cur = data.analysis.currency
    cards = [
        el(
            "article",
            {"class": f"sign {s.status.value}", "data-status": s.status.value},
            el(
                "h3",
                None,
                el("span", {"class": "no"}, f"No.{s.number}"),
                f" {s.title} ",
                el("span", {"class": f"badge {s.status.value}"}, STATUS_LABEL[s.status.value]),
            ),
            el(
                "dl",
                None,
                *[
                    x
                    for k, v in s.figures.items()
                    for x in (
                        el("dt", None, k.replace("_", " ")),
                        el("dd", None, _figure(k, v, cur)),
                    )
                ],
            ),
            el("p", {"class": "basis"}, s.based_on),
        )
        for s in data.signs
    ]
    return _section(
        "scorecard",
        "The five warning signs of VM sprawl",
        el("div", {"class": "signs"}, *cards),
    )


def _figure(key: str, value: object, currency: str) -> str:
    """A scorecard figure as a manager reads it: shares in %, money with its symbol, GB whole."""
    if not isinstance(value, int | float):
        return str(value)
    if key.endswith("_share") or key.endswith("share_of_cost"):
        return pct(value)
    if key.endswith("_monthly"):
        return money(value, currency, cents=True)
    if key.endswith("_gb"):
        return f"{value:,.0f}"
    return f"{value:,}" if isinstance(value, int) else f"{value:,.2f}"


def _category_section(data: ReportData) -> Element:
    a, cur = data.analysis, data.analysis.currency
    bars = waste_by_category(a)
    risk = frozenset(t.category.value for t in a.totals if not t.is_waste)
    legend = [
        ("waste: reclaimable", BLUE),
        ("waste: right-sizing", LIGHT_BLUE),
        ("money at risk (governance), not waste", RISK_COLOUR),
    ]
    chart = bar_chart("chart-category", "Waste by category (per month)", bars, legend, cur)
    rows = [
        [
            b.label,
            b.count,
            money(b.values[0], cur, cents=True),
            "at risk" if b.label in risk else "waste",
        ]
        for b in bars
    ]
    return _section(
        "by-category",
        "Waste by category",
        el("figure", None, chart, el("figcaption", None, "Each VM is counted once.")),
        table(["category", "VMs / disks", "per month", "counted as"], rows, numeric=(1, 2)),
    )


def _department_section(data: ReportData) -> Element:
    cur = data.analysis.currency
    bars = waste_by_department(data.analysis, data.departments)
    series = [("reclaimable", BLUE), (RIGHTSIZING, LIGHT_BLUE)]
    chart = bar_chart("chart-department", "Waste by department (per month)", bars, series, cur)
    rows = [
        [
            b.label,
            b.count,
            money(b.values[0], cur, cents=True),
            money(b.values[1], cur, cents=True),
            money(sum(b.values), cur, cents=True),
        ]
        for b in bars
    ]
    note = (
        f'VMs without a department are under "{NONE_LABEL}"; orphaned disks belong to no VM '
        f'and are under "{ORPHANS_LABEL}".'
    )
    return _section(
        "by-department",
        "Waste by department",
        el("figure", None, chart, el("figcaption", None, note)),
        table(
            ["department", "reclaimable VMs/disks", "reclaimable", RIGHTSIZING, "total"],
            rows,
            numeric=(1, 2, 3, 4),
        ),
    )


def _history_section(data: ReportData) -> Element:
    cur = data.analysis.currency
    cats = [c for c in HISTORY_CATEGORIES if c not in GOVERNANCE]
    chart = history_chart("chart-history", data.history, cur)
    rows = [
        [
            f"{p.at:%Y-%m-%d}",
            p.vms,
            *(money(p.monthly.get(c, 0.0), cur) for c in cats),
            money(p.waste, cur),
            money(p.at_risk, cur),
        ]
        for p in data.history
    ]
    note = (
        "The line replays the inventory's history (events): powered off for 30+ days, lease "
        "expired and orphaned disks are waste (areas); VMs without an owner are money at risk "
        "(dashed line). Idle VMs are not in it: idle needs metrics, and the metrics history "
        f"covers only the last {data.metrics_days} days (metrics retention). Snapshot sprawl and "
        "right-sizing are not in it either, so a VM the live analysis calls idle can show here "
        "as owner-less. VMs are priced at the size they had then, with today's cost model."
    )
    headers = ["month end", "VMs", *(c.value for c in cats), "waste", "at risk (no owner)"]
    return _section(
        "over-time",
        "Waste over time",
        el("figure", None, chart, el("figcaption", None, note)),
        table(headers, rows, numeric=tuple(range(1, len(headers)))),
    )


def _findings_section(data: ReportData, limit: int = 25) -> Element:
    a, cur = data.analysis, data.analysis.currency
    top = sorted(a.findings, key=lambda f: (-f.monthly_cost_held, f.subject_name))[:limit]
    rows = [
        [
            f.subject_name,
            f.category.value,
            _department(data.departments.get(f.subject)),
            money(f.monthly_cost_held, cur, cents=True),
            f"{f.confidence:.2f}",
            _evidence(f),
            f.suggested_action,
        ]
        for f in top
    ]
    return _section(
        "findings",
        f"Top {len(top)} findings of {len(a.findings)}",
        table(
            [
                "VM / disk",
                "category",
                "department",
                "per month",
                "confidence",
                "evidence",
                "suggested action",
            ],
            rows,
            numeric=(3, 4),
        ),
    )


def _evidence(f: Finding) -> str:
    parts = [f"{k}={v}" for k, v in f.evidence.measures.items()]
    if f.evidence.window_start and f.evidence.window_end:
        parts.append(f"window {f.evidence.window_start:%Y-%m-%d}..{f.evidence.window_end:%Y-%m-%d}")
    if f.also_matched:
        parts.append("also: " + ", ".join(c.value for c in f.also_matched))
    return "; ".join(parts)


def _rightsizing_section(data: ReportData, limit: int = 25) -> Element:
    a, cur = data.analysis, data.analysis.currency
    reclaimed = {f.subject for f in a.findings if f.category not in GOVERNANCE}
    shown = sorted(
        (r for r in a.rightsizing if r.vm_uuid not in reclaimed and (r.oversized or r.undersized)),
        key=lambda r: -r.monthly_saving,
    )
    rows = [
        [
            r.vm_name,
            _advice(r.cpu, "vCPU"),
            _advice(r.memory, "MiB"),
            r.memory.source if r.memory else r.memory_note,
            money(r.monthly_saving, cur, cents=True),
        ]
        for r in shown[:limit]
    ]
    mode = a.rightsizing[0].mode.value if a.rightsizing else "moderate"
    note = (
        f"{len(shown)} VMs to resize ({sum(r.oversized for r in shown)} with an oversized "
        f"and {sum(r.undersized for r in shown)} with an undersized CPU or memory), mode "
        f"{mode}; VMs already to be "
        "reclaimed are left out. A negative saving is the cost of growing an undersized VM."
    )
    return _section(
        "rightsizing",
        "Right-sizing proposals",
        el("p", None, note),
        table(
            [
                "VM",
                "CPU now → proposed (demand)",
                "memory now → proposed (demand)",
                "memory source",
                "saving per month",
            ],
            rows,
            numeric=(4,),
        ),
    )


def _advice(advice: Any, unit: str) -> str:
    if advice is None:
        return "—"
    return (
        f"{advice.current:g} → {advice.recommended:g} {unit} "
        f"({advice.demand:.1f}, {advice.verdict})"
    )


def _reclamation_section(data: ReportData, limit: int = 25) -> Element:
    cur = data.analysis.currency
    cases = list(data.reclamation)
    if not cases:
        return _section(
            "reclamation",
            "Reclamation",
            el("p", None, "No VM has been flagged yet: 'corral reclaim flag-findings'."),
        )
    states = Counter(c.state.value for c in cases)
    realized = sum(c.realized for c in cases)
    rate = sum(c.saving_now_monthly for c in cases)
    rows = [
        [
            c.id,
            c.vm,
            c.state.value,
            c.category,
            c.owner or NONE_LABEL,
            money(c.monthly_cost, cur, cents=True),
            money(c.realized, cur, cents=True),
        ]
        for c in sorted(cases, key=lambda c: -c.id)[:limit]
    ]
    return _section(
        "reclamation",
        "Reclamation",
        el(
            "p",
            None,
            f"{len(cases)} cases: "
            + ", ".join(f"{n} {state}" for state, n in sorted(states.items()))
            + f". Saved so far {money(realized, cur, cents=True)}; saving now "
            f"{money(rate, cur, cents=True)} a month (powered-off VMs at their compute cost, "
            "deleted VMs at their whole cost).",
        ),
        table(
            ["case", "VM", "state", "category", "owner", "cost per month", "saved so far"],
            rows,
            numeric=(0, 5, 6),
        ),
    )


def _chargeback_section(data: ReportData) -> Element:
    cur = data.analysis.currency
    waste = {b.label: sum(b.values) for b in waste_by_department(data.analysis, data.departments)}
    total = sum(r.total for r in data.chargeback) or 1.0
    names = [NONE_LABEL if r.key == UNASSIGNED else r.key for r in data.chargeback]
    rows: list[list[object]] = [
        [
            name,
            r.vms,
            money(r.total, cur, cents=True),
            pct(r.total / total),
            money(waste.get(name, 0.0), cur, cents=True),
        ]
        for name, r in zip(names, data.chargeback, strict=True)
    ]
    if ORPHANS_LABEL in waste:  # disks no VM uses: storage billed to nobody
        rows.append([ORPHANS_LABEL, 0, "—", "—", money(waste[ORPHANS_LABEL], cur, cents=True)])
    return _section(
        "chargeback",
        "Chargeback by department",
        table(
            ["department", "VMs", "cost per month", "share", "of which waste"],
            rows,
            numeric=(1, 2, 3, 4),
        ),
    )


def _licence_section(data: ReportData) -> Element:
    cur = data.analysis.currency
    rows = [
        [
            u.product,
            u.per.value,
            u.covers or "",
            u.deployed,
            "" if u.entitlements is None else u.entitlements,
            "" if u.free is None else u.free,
            u.status.value,
            money(u.monthly_cost, cur, cents=True),
        ]
        for u in data.licences.usage
    ]
    moves = [
        [s.host, s.family, s.vms, s.current, s.suggested, money(s.monthly_saving, cur, cents=True)]
        for s in data.licences.suggestions
    ]
    parts: list[Child] = [
        table(
            [
                "product",
                "per",
                "covers",
                "deployed",
                "entitlements",
                "free",
                "status",
                "cost per month",
            ],
            rows,
            numeric=(3, 4, 5, 7),
        )
    ]
    if moves:
        parts += [
            el("h3", None, "Cheaper licensing"),
            table(
                ["host", "family", "VMs", "now", "cheaper", "saving per month"],
                moves,
                numeric=(2, 5),
            ),
        ]
    return _section("licences", "Licence compliance", *parts)


def _insufficient_section(data: ReportData, limit: int = 15) -> Element:
    a = data.analysis
    counts = Counter((i.detector, i.reason) for i in (*a.insufficient, *a.rightsizing_insufficient))
    ranked = sorted(counts.items(), key=lambda x: (-x[1], x[0]))
    rows: list[list[object]] = [[d, r, n] for (d, r), n in ranked[:limit]]
    rest = sum(n for _, n in ranked[limit:])
    if rest:
        rows.append(["", f"{len(ranked) - limit} other reasons", rest])
    return _section(
        "insufficient",
        "Not enough data to decide",
        el(
            "p",
            None,
            "These VMs are neither counted as waste nor as fine: the data needed is missing.",
        ),
        table(["detector", "reason", "VMs"], rows, numeric=(2,)),
    )


__all__ = [
    "Bar",
    "html_target",
    "money",
    "render_html",
    "waste_by_category",
    "waste_by_department",
    "write_html",
]
