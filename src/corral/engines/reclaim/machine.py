"""The reclamation workflow as a pure state machine over plain data.

flagged → notified → (extended | confirmed) → quarantined → archived → deleted.
Every state before ``deleted`` can be walked back: extend (the owner keeps the
VM, with a reason and a new expiry) and restore (Corral puts the VM back as it
was). Time-driven steps become due after the policy's waiting periods; a step
that needs approvals waits for them. The service executes what this module
decides; nothing here touches a hypervisor, a database or a mail server.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum

from corral.domain.reclaim import State as State
from corral.engines.reclaim.policy import Policy
from corral.errors import ConflictError, ForbiddenError

OPEN: frozenset[State] = frozenset(
    {State.flagged, State.notified, State.confirmed, State.quarantined, State.archived}
)
# States where the VM is powered off by Corral and can be put back.
OFFLINE: frozenset[State] = frozenset({State.quarantined, State.archived})


class Step(StrEnum):
    notify = "notify"
    confirm = "confirm"
    extend = "extend"
    quarantine = "quarantine"
    archive = "archive"
    delete = "delete"
    restore = "restore"
    cancel = "cancel"


# Which state each step starts from, and where it leads.
SOURCES: Mapping[Step, frozenset[State]] = {
    Step.notify: frozenset({State.flagged}),
    Step.confirm: frozenset({State.notified}),
    Step.extend: frozenset({State.flagged, State.notified, State.confirmed, *OFFLINE}),
    Step.quarantine: frozenset({State.notified, State.confirmed}),
    Step.archive: frozenset({State.quarantined}),
    Step.delete: frozenset({State.archived}),
    Step.restore: OFFLINE,
    Step.cancel: frozenset({State.flagged, State.notified, State.confirmed}),
}
TARGET: Mapping[Step, State] = {
    Step.notify: State.notified,
    Step.confirm: State.confirmed,
    Step.extend: State.extended,
    Step.quarantine: State.quarantined,
    Step.archive: State.archived,
    Step.delete: State.deleted,
    Step.restore: State.restored,
    Step.cancel: State.cancelled,
}
# Steps the scheduler takes on its own when their time has come.
AUTOMATIC: frozenset[Step] = frozenset({Step.notify, Step.quarantine, Step.archive, Step.delete})


@dataclass(frozen=True)
class CaseView:
    """What the rules need to know of one case."""

    state: State
    flagged_at: datetime
    flagged_by: str
    notified_at: datetime | None = None
    respond_by: datetime | None = None
    confirmed_at: datetime | None = None
    quarantined_at: datetime | None = None
    archived_at: datetime | None = None
    approvals: Mapping[Step, frozenset[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class Due:
    step: Step


@dataclass(frozen=True)
class Waiting:
    """Nothing to do before ``until`` (None: waits for a person, e.g. an approval)."""

    reason: str
    until: datetime | None = None


Decision = Due | Waiting


def next_step(case: CaseView, policy: Policy, now: datetime) -> Decision | None:
    """The automatic step that is due now, or why the case waits; None when closed."""
    if case.state not in OPEN:
        return None
    step, since, wait = _timetable(case, policy)
    until = since + wait
    if now < until:
        return Waiting(f"{step} is due on {until:%Y-%m-%d %H:%M} UTC", until)
    missing = missing_approvals(case, step, policy)
    if missing:
        return Waiting(f"{step} needs {missing} more approval(s)")
    return Due(step)


def _timetable(case: CaseView, policy: Policy) -> tuple[Step, datetime, timedelta]:
    days = timedelta(days=1)
    if case.state is State.flagged:
        return Step.notify, case.flagged_at, timedelta(0)
    if case.state is State.notified:
        assert case.respond_by is not None, "a notified case has a response deadline"
        return Step.quarantine, case.respond_by, timedelta(0)
    if case.state is State.confirmed:
        assert case.confirmed_at is not None
        return Step.quarantine, case.confirmed_at, timedelta(0)
    if case.state is State.quarantined:
        assert case.quarantined_at is not None
        return Step.archive, case.quarantined_at, policy.quarantine_days * days
    assert case.archived_at is not None
    return Step.delete, case.archived_at, policy.cooling_off_days * days


def missing_approvals(case: CaseView, step: Step, policy: Policy) -> int:
    have = case.approvals.get(step, frozenset())
    return max(0, policy.approvals.get(step, 0) - len(have))


def check(case: CaseView, step: Step, now: datetime, policy: Policy) -> None:
    """Raise ConflictError unless ``step`` may be taken from the case's state now."""
    if case.state not in SOURCES[step]:
        allowed = ", ".join(sorted(SOURCES[step]))
        raise ConflictError(
            f"cannot {step} a case that is {case.state}; {step} is possible from: {allowed}."
        )
    if step in AUTOMATIC:
        decision = next_step(case, policy, now)
        if decision != Due(step):
            why = decision.reason if isinstance(decision, Waiting) else "the case is closed"
            raise ConflictError(f"{step} is not due yet: {why}.")


def check_approver(case: CaseView, step: Step, approver: str, policy: Policy) -> None:
    """Approvals: only configured approvers, never the person who flagged (four eyes), once."""
    if step not in policy.approvals:
        raise ConflictError(f"the policy asks no approval for {step}.")
    if case.state not in OPEN:
        raise ConflictError(f"the case is {case.state}; there is nothing left to approve.")
    if policy.approvers and approver not in policy.approvers:
        raise ForbiddenError(f"{approver!r} is not one of the policy's approvers.")
    if policy.four_eyes and approver == case.flagged_by:
        raise ForbiddenError("the person who flagged a VM cannot also approve its reclamation.")
    if approver in case.approvals.get(step, frozenset()):
        raise ConflictError(f"{approver!r} has already approved {step} of this case.")


def check_extension(until: date, reason: str, today: date, policy: Policy) -> None:
    """An extension needs a reason and a new expiry within the policy's limit."""
    if not reason.strip():
        raise ConflictError("an extension needs a reason.")
    if until <= today:
        raise ConflictError(f"the new expiry {until} must be after today ({today}).")
    limit = today + timedelta(days=policy.max_extension_days)
    if until > limit:
        raise ConflictError(
            f"the new expiry {until} is more than {policy.max_extension_days} days away "
            f"(latest {limit})."
        )
