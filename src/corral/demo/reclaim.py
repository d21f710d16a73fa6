"""The demo's reclamation: the workflow shown on the demo fleet with its real sprawl findings.

- one idle VM is walked through every step and back: flagged, owner e-mailed,
  quarantined (powered off), archived (disk snapshot), then restored;
- one long-powered-off VM goes all the way: flagged, e-mailed, quarantined,
  archived, approved by a second person, deleted with its disks;
- the next biggest waste findings are flagged and their owners e-mailed under
  the normal policy (14 days to answer), left for ``corral reclaim run``.

The two walks use a policy without waiting periods so the demo does not take
weeks; the actions (libvirt power-off, snapshot, undefine, volume deletion on
the test-driver hosts) and the e-mails are the real ones. Without
CORRAL_SMTP_URL the e-mails are written to $CORRAL_HOME/outbox.
"""

from __future__ import annotations

from typing import Any

from corral.config import Settings
from corral.engines.reclaim import Policy
from corral.engines.sprawl.analysis import SprawlAnalysis
from corral.engines.sprawl.model import Category, Finding
from corral.inventory.service import Inventory
from corral.reclaim.findings import FINDING_CATEGORIES, flag_findings
from corral.reclaim.service import Recipients, ReclaimService
from corral.reclaim.setup import reclaim_service

NO_WAITING = Policy(
    notice_days=0,
    quarantine_days=0,
    cooling_off_days=0,
    approvals={"delete": 1},
    shutdown_grace_s=5,
)
DEMO_MAIL_DOMAIN = "demo.corral.test"


def _pick(findings: list[Finding], prefer: tuple[Category, ...], skip: set[str]) -> Finding | None:
    """The biggest finding of the first preferred category that has one."""
    for category in prefer:
        for f in findings:
            if f.category is category and f.subject not in skip:
                return f
    return None


def _step_row(svc: ReclaimService, inv: Inventory, case_id: int, step: str) -> dict[str, Any]:
    case = svc.case(case_id)
    vm = inv.find_vm(case.vm_uuid)
    return {
        "vm": case.vm,
        "step": step,
        "case state": case.state,
        "vm state": "deleted" if vm.deleted_at else vm.state.value,
        "snapshots": ", ".join(s["name"] for s in vm.snapshot_list) or "-",
        "tags": ", ".join(vm.tags) or "-",
    }


def _walk(
    quick: ReclaimService, inv: Inventory, finding: Finding, *, to_deletion: bool
) -> list[dict[str, Any]]:
    (row,) = flag_findings(quick, [finding], "demo-admin")
    if row.case is None:
        return []
    case_id = row.case
    rows = [_step_row(quick, inv, case_id, "flag")]
    for step in ("notify", "quarantine", "archive"):
        quick.run(case_ids=[case_id])
        rows.append(_step_row(quick, inv, case_id, step))
    if to_deletion:
        quick.approve(case_id, "delete", "demo-manager", "demo: checked with the owner")
        quick.run(case_ids=[case_id])
        rows.append(_step_row(quick, inv, case_id, "approve + delete"))
    else:
        quick.restore(case_id, "demo-admin")
        rows.append(_step_row(quick, inv, case_id, "restore"))
    return rows


def demo_reclamation(
    inv: Inventory, settings: Settings, analysis: SprawlAnalysis, *, flag_more: int = 10
) -> dict[str, Any]:
    """Run the demo's reclamation; returns the walk-through rows, the flagged cases, the money."""
    svc = reclaim_service(inv, settings)
    if svc.recipients.domain is None and svc.recipients.fallback is None:
        svc.recipients = Recipients(DEMO_MAIL_DOMAIN, f"vm-admins@{DEMO_MAIL_DOMAIN}")
    quick = ReclaimService(
        inv, NO_WAITING, svc.model, svc.mailer, recipients=svc.recipients, base_url=svc.base_url
    )
    waste = sorted(
        (f for f in analysis.findings if f.category in FINDING_CATEGORIES),
        key=lambda f: -f.monthly_cost_held,
    )
    rows: list[dict[str, Any]] = []
    walked: set[str] = set()
    # the walk back prefers a running idle VM; the walk to deletion a long-powered-off one
    for prefer, to_deletion in (
        ((Category.idle, Category.lease_expired, Category.powered_off), False),
        ((Category.powered_off, Category.lease_expired, Category.idle), True),
    ):
        finding = _pick(waste, prefer, walked)
        if finding is not None:
            rows += _walk(quick, inv, finding, to_deletion=to_deletion)
            walked.add(finding.subject)
    rest = [f for f in waste if f.subject not in walked][:flag_more]
    flagged = [r for r in flag_findings(svc, rest, "demo-admin") if r.case is not None]
    outcomes = svc.run(case_ids=[r.case for r in flagged if r.case is not None]) if flagged else []
    notified = sum(o.result == "done" for o in outcomes)
    return {
        "walkthrough": rows,
        "flagged": len(flagged),
        "notified": notified,
        "held_monthly": round(sum(r.monthly for r in flagged), 2),
        "currency": analysis.currency,
        "mail": svc.mail_line,
    }
