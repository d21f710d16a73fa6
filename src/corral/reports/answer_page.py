"""The VM owner's answer page, built: what the case's state means, the facts, the two forms.

Why here and not in the API route: the page is the reclamation workflow told to
its owner; the route (``corral.api.routes.respond_page``) only checks the token,
reads the form and wraps these documents in a response with its security
headers. Every value becomes lxml element text or an attribute (escaped), there
is no JavaScript and no outside resource.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from corral.engines.reclaim import OPEN, State
from corral.errors import NotFoundError, ValidationError
from corral.reclaim.service import ReclaimService
from corral.reclaim.views import CaseDetail
from corral.reports.templates.elements import Child, Element, el, money, section, table
from corral.reports.templates.style import CSS

MAX_REASON = 2_000

PAGE_CSS = (
    CSS
    + """
main { max-width:760px; }
dl.facts { display:grid; grid-template-columns:max-content 1fr; gap:4px 16px; margin:0; }
dl.facts dt { color:var(--muted); } dl.facts dd { margin:0; overflow-wrap:anywhere; }
.state { font-size:17px; font-weight:600; margin:0 0 6px; }
.error { border:1px solid var(--alert); border-left:6px solid var(--alert); background:#fdf1ef;
  padding:10px 14px; border-radius:6px; margin:18px 0; }
form label { display:block; font-weight:600; margin:10px 0 4px; }
form .hint { color:var(--muted); font-size:13px; margin:2px 0 0; }
input[type=date], textarea { font:inherit; padding:6px 8px; border:1px solid #9aa7b5;
  border-radius:6px; width:100%; max-width:520px; }
textarea { min-height:90px; }
button { display:block; font:inherit; font-weight:600; margin-top:14px; padding:8px 18px;
  border-radius:6px; border:1px solid #16324f; background:#16324f; color:#fff; cursor:pointer; }
button.go { background:#fff; color:var(--alert); border-color:var(--alert); }
label.check { font-weight:400; display:flex; gap:8px; align-items:flex-start; }
"""
)


@dataclass(frozen=True)
class Answer:
    """What the owner typed, kept to show it again when the answer is refused."""

    action: str = ""
    until: str = ""
    reason: str = ""
    sure: bool = False
    problem: str | None = None


def submit_answer(svc: ReclaimService, token: str, form: Answer) -> None:
    """Record the owner's answer (keep until a date with a reason, or let it go); raises
    ValidationError with one sentence for the owner when the form is not right."""
    if form.problem:
        raise ValidationError(form.problem)
    if form.action == "extend":
        if len(form.reason) > MAX_REASON:
            raise ValidationError(f"the reason is too long; keep it under {MAX_REASON} characters.")
        svc.respond(token, "extend", None, _date(form.until), form.reason)
    elif form.action == "confirm":
        if not form.sure:
            raise ValidationError("tick the box to confirm that the VM can go.")
        svc.respond(token, "confirm")
    else:
        raise ValidationError("choose 'Keep this VM' or 'It can go'.")


def _date(text: str) -> date:
    if not text:
        raise ValidationError("give the new expiry date, for example 2026-12-31.")
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValidationError(
            "the new expiry date must be a date written YYYY-MM-DD, for example 2026-12-31."
        ) from None


def not_found_page() -> Element:
    """A wrong or cut link: says so, and nothing about any case."""
    return document(
        "Link not valid",
        section(
            "This link is not valid",
            el(
                "p",
                None,
                "Check that the whole address from the e-mail was opened, or use the link "
                "in the latest e-mail about your VM. Your Corral administrator can help.",
            ),
        ),
    )


def answer_page(
    svc: ReclaimService, case_id: int, form: Answer, error: str | None = None
) -> Element:
    """The page of one case: where it stands, what was found, and the forms while it is open
    (``form`` is shown again with ``error`` when an answer was refused)."""
    case = svc.case(case_id)
    today = svc.now.date()
    alert = el("div", {"class": "error", "role": "alert"}, f"Your answer was not saved: {error}")
    parts: list[Child] = [alert] if error else []
    parts += [_statussection(case, svc), _factssection(case, _expiry(svc, case))]
    if case.state in OPEN and not case.pending:
        parts.append(_keep_form(form, today, svc.policy.max_extension_days))
        if case.state == State.notified:
            parts.append(_go_form())
    title = (
        f"VM {case.vm}: keep it or let it go"
        if case.state in OPEN
        else f"VM {case.vm}: reclamation {case.state}"
    )
    return document(title, *parts, case_id=case_id)


def document(title: str, *parts: Child, case_id: int | None = None) -> Element:
    footer = "Corral"
    if case_id is not None:
        footer = f"Reclamation case {case_id} · this page's address is your key: do not forward it."
    head = el(
        "head",
        None,
        el("meta", {"charset": "utf-8"}),
        el("meta", {"name": "viewport", "content": "width=device-width, initial-scale=1"}),
        el("meta", {"name": "referrer", "content": "no-referrer"}),
        el("title", None, title),
        el("style", None, PAGE_CSS),
    )
    body = el(
        "body",
        None,
        el("header", None, el("h1", None, title), el("p", {"class": "sub"}, "Corral")),
        el("main", None, *parts),
        el("footer", None, footer),
    )
    return el("html", {"lang": "en"}, head, body)


# -- what the page says ----------------------------------------------------------


def _statussection(case: CaseDetail, svc: ReclaimService) -> Element:
    headline, detail = _state_words(case, svc)
    lines: list[Child] = [el("p", {"class": "state"}, headline), el("p", None, detail)]
    if case.pending:
        lines.append(
            el("p", None, f"A step is under way ({case.pending}); reload this page shortly.")
        )
    elif case.state in OPEN - {State.notified} and case.next:
        lines.append(el("p", None, f"Next: {case.next}."))
    return section("Where it stands", *lines, section_id="status")


def _state_words(case: CaseDetail, svc: ReclaimService) -> tuple[str, str]:
    state, cost = State(case.state), money(case.monthly_cost, case.currency, cents=True)
    at, by = _when(case, _EVENT[state]) if state in _EVENT else (None, None)
    policy = svc.policy
    if state is State.notified:
        return (
            f"Waiting for your answer until {_ts(case.respond_by)} UTC.",
            "If nobody answers by then, the VM is powered off (quarantined), archived as a disk "
            f"snapshot {policy.quarantine_days} days later, and deleted {policy.cooling_off_days} "
            "days after that. Until it is deleted every step can be undone.",
        )
    if state is State.confirmed:
        return (
            f"{by or 'Its owner'} agreed on {_ts(at)} UTC that the VM can go.",
            "It will be powered off at the next reclamation run, then archived and deleted. "
            "Changed your mind? You can still keep it below.",
        )
    if state is State.quarantined:
        return (
            f"Quarantined: powered off on {_ts(at)} UTC.",
            "The VM is not running and does not start with its host, but nothing is lost. "
            f"It will be archived as a disk snapshot after {policy.quarantine_days} days. "
            "Keeping it powers it back on as it was.",
        )
    if state is State.archived:
        return (
            f"Archived: a disk snapshot ({case.archive_snapshot}) was taken on {_ts(at)} UTC.",
            "The VM stays powered off and will be deleted with its disks after a cooling-off "
            f"period of {policy.cooling_off_days} days. Keeping it removes the snapshot and "
            "brings it back as it was.",
        )
    return _closed_words(state, case, at, by, cost)


def _closed_words(
    state: State, case: CaseDetail, at: datetime | None, by: str | None, cost: str
) -> tuple[str, str]:
    if state is State.extended:
        return (
            f"Kept: this VM is kept until {case.extended_until}.",
            f"{by or 'Its owner'} answered on {_ts(at)} UTC with the reason: "
            f"{case.extend_reason}. Nothing more will happen under this case.",
        )
    if state is State.restored:
        return (
            f"Restored on {_ts(at)} UTC.",
            "An administrator put the VM back as it was. Nothing more will happen under this case.",
        )
    if state is State.deleted:
        return (
            f"Deleted on {_ts(at)} UTC.",
            f"The VM and its disks are gone; this cannot be undone. It saves about {cost} a month.",
        )
    if state is State.cancelled:
        return (
            f"Cancelled on {_ts(at)} UTC.",
            "The reclamation was called off; nothing will happen to the VM under this case.",
        )
    return (f"State: {state}.", "The owner has not been notified yet.")


_EVENT = {
    State.confirmed: "reclaim-confirmed",
    State.quarantined: "quarantined",
    State.archived: "archived",
    State.extended: "reclaim-extended",
    State.restored: "restored",
    State.deleted: "reclaim-deleted",
    State.cancelled: "reclaim-cancelled",
}


def _when(case: CaseDetail, kind: str) -> tuple[datetime | None, str | None]:
    """When and by whom this case last took the step recorded as ``kind``."""
    for event in reversed(case.history):
        if event.kind == kind and event.case == case.id:
            return event.at, event.by
    return None, None


def _ts(value: datetime | None) -> str:
    return "?" if value is None else f"{value:%Y-%m-%d %H:%M}"


def _expiry(svc: ReclaimService, case: CaseDetail) -> str:
    try:
        vm = svc.inv.find_vm(case.vm_uuid)
    except NotFoundError:
        return "unknown (the VM is no longer in the inventory)"
    return str(vm.expires_on or "none set")


def _factssection(case: CaseDetail, expiry: str) -> Element:
    cost = money(case.monthly_cost, case.currency, cents=True)
    facts = [
        ("VM", case.vm),
        ("Host", case.host or "?"),
        ("Owner", case.owner or "none recorded"),
        ("Department", case.department or "none recorded"),
        ("Why it was flagged", case.reason),
        ("Category", case.category),
        ("Cost", f"about {cost} a month"),
        ("Lease ends (inventory)", expiry),
        ("Flagged", f"{_ts(case.flagged_at)} UTC by {case.flagged_by}"),
    ]
    items: list[Child] = []
    for name, value in facts:
        items += [el("dt", None, name), el("dd", None, str(value))]
    parts: list[Child] = [el("dl", {"class": "facts"}, *items)]
    evidence = case.evidence
    if evidence:
        rows = [(str(k), _plain(v)) for k, v in sorted(evidence.items())]
        parts += [el("h3", None, "Evidence"), table(["measure", "value"], rows)]
    return section("What was found", *parts, section_id="facts")


def _plain(value: object) -> str:
    if isinstance(value, float):
        return f"{value:,.4g}"
    if isinstance(value, list | tuple):
        return ", ".join(_plain(v) for v in value)
    return str(value)


def _keep_form(form: Answer, today: date, max_days: int) -> Element:
    latest = today + timedelta(days=max_days)
    until = form.until if form.action == "extend" else ""
    reason = form.reason if form.action == "extend" else ""
    return section(
        "Keep this VM",
        el(
            "form",
            {"method": "post", "id": "keep"},
            el("input", {"type": "hidden", "name": "action", "value": "extend"}),
            el("label", {"for": "until"}, "Keep it until"),
            el(
                "input",
                {
                    "type": "date",
                    "id": "until",
                    "name": "until",
                    "required": "required",
                    "min": (today + timedelta(days=1)).isoformat(),
                    "max": latest.isoformat(),
                    "value": until,
                },
            ),
            el("p", {"class": "hint"}, f"At most {max_days} days from today: {latest} or earlier."),
            el("label", {"for": "reason"}, "Why it is still needed"),
            el(
                "textarea",
                {
                    "id": "reason",
                    "name": "reason",
                    "required": "required",
                    "maxlength": str(MAX_REASON),
                },
                reason,
            ),
            el("button", {"type": "submit"}, "Keep this VM"),
        ),
        section_id="keep-section",
    )


def _go_form() -> Element:
    return section(
        "It can go",
        el(
            "p",
            None,
            "Nobody needs it any more? Say so and it is reclaimed now instead of "
            "waiting for the deadline: powered off at the next run, then archived "
            "and deleted.",
        ),
        el(
            "form",
            {"method": "post", "id": "go"},
            el("input", {"type": "hidden", "name": "action", "value": "confirm"}),
            el(
                "label",
                {"class": "check"},
                el(
                    "input",
                    {"type": "checkbox", "name": "sure", "value": "yes", "required": "required"},
                ),
                "I confirm this VM can be powered off, archived and deleted.",
            ),
            el("button", {"type": "submit", "class": "go"}, "It can go"),
        ),
        section_id="go-section",
    )


__all__ = [
    "MAX_REASON",
    "Answer",
    "answer_page",
    "document",
    "not_found_page",
    "submit_answer",
]
