"""The reclamation workflow, executed: cases in the database, real libvirt actions, real e-mail.

The rules (which step, when, with which approvals) are the pure functions of
corral.engines.reclaim. This service opens cases, schedules the due steps and
takes people's answers; the pieces it is built from are apart:

- ``executor``: one step in three phases (claim, act, commit), resumable after a crash;
- ``steps``: one class per step (notify, quarantine, archive, delete, restore, extend,
  confirm, cancel) with what it prepares, does and records;
- ``notices``: the e-mails, each sent at most once per step;
- ``queries``: reading cases, history and savings;
- ``env``: the inventory, policy, prices, mailer, host connections and clock they share.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from corral.domain.text import check_text
from corral.engines.costing import price_vm
from corral.engines.reclaim import (
    OPEN,
    CaseView,
    Due,
    State,
    Step,
    Waiting,
    check_approver,
    check_extension,
    next_step,
)
from corral.engines.sprawl.model import VMState
from corral.errors import ConflictError, CorralError, NotFoundError, ValidationError
from corral.reclaim import executor, queries
from corral.reclaim.env import (
    ARCHIVE_TAG,
    QUARANTINE_TAG,
    Connect,
    Crash,
    Recipients,
    ReclaimEnv,
)
from corral.reclaim.steps import STEPS
from corral.reclaim.views import (
    CaseDetail,
    CaseEvent,
    CaseRecord,
    Savings,
    case_view,
    rule_view,
)
from corral.services.records import vm_record
from corral.store import models as m


@dataclass(frozen=True)
class Outcome:
    case_id: int
    vm: str
    step: str
    result: str  # done | would-do | waiting | failed
    detail: str = ""


class ReclaimService(ReclaimEnv):
    """Open cases, run the due steps, take people's answers; read cases and savings."""

    # -- opening cases ---------------------------------------------------------
    def flag(
        self,
        ref: str,
        *,
        category: str,
        reason: str,
        actor: str,
        evidence: dict[str, Any] | None = None,
    ) -> CaseRecord:
        """Open a case for one VM; refused while another case is open or an extension holds."""
        check_text(ref, "the VM")
        check_text(reason, "the reason", multiline=True)
        if not reason.strip():
            raise ValidationError("flagging a VM needs a reason.")
        now = self.now
        with self.db.session() as s:
            vm, host_name = self.inv.vm_row(s, ref)
            if vm.deleted_at is not None:
                raise ConflictError(
                    f"VM {vm.name} was already deleted on {vm.deleted_at:%Y-%m-%d}."
                )
            if vm.is_template:
                raise ConflictError(f"{vm.name} is a template; templates are not reclaimed.")
            self._refuse_if_held(s, vm, now)
            record = vm_record(vm, host_name)
            cost = price_vm(record, self.model)
            off = price_vm(replace(record, state=VMState.shutoff), self.model)
            case = m.ReclaimCase(
                vm_uuid=vm.uuid,
                vm_name=vm.name,
                host_name=host_name,
                state=State.flagged,
                category=category,
                reason=reason.strip(),
                evidence=evidence or {},
                owner=vm.owner,
                department=vm.department,
                flagged_by=actor,
                flagged_at=now,
                currency=self.model.currency,
                monthly_cost=round(cost.total, 2),
                monthly_saving_off=round(cost.total - off.total, 2),
                deleted_volumes=[],
            )
            s.add(case)
            s.flush()
            self.event(s, case, "reclaim-flagged", actor, category=category, reason=case.reason)
            try:
                s.flush()
            except IntegrityError:
                raise ConflictError(f"VM {vm.name} already has an open reclamation case.") from None
            return case_view(case)

    def _refuse_if_held(self, s: Session, vm: m.VM, now: datetime) -> None:
        rows = s.scalars(select(m.ReclaimCase).where(m.ReclaimCase.vm_uuid == vm.uuid)).all()
        for c in rows:
            if c.state in OPEN:
                raise ConflictError(f"VM {vm.name} already has an open reclamation case ({c.id}).")
            if c.state == State.extended and c.extended_until and c.extended_until >= now.date():
                raise ConflictError(
                    f"the owner of {vm.name} extended it until {c.extended_until} "
                    f"(case {c.id}: {c.extend_reason}); it cannot be flagged before then."
                )

    # -- the scheduler ---------------------------------------------------------
    def run(self, *, dry_run: bool = False, case_ids: Iterable[int] | None = None) -> list[Outcome]:
        """Resume every step left pending, then take every automatic step that is due.

        The hosts touched are synced once at the end, not after each VM: a run
        over hundreds of cases on one host reads that host once.
        """
        with self.db.session() as s:
            behind = queries.hosts_behind(s)
            q = (
                select(m.ReclaimCase, m.VM.deleted_at)
                .outerjoin(m.VM, m.VM.uuid == m.ReclaimCase.vm_uuid)
                .where(m.ReclaimCase.state.in_([str(x) for x in OPEN]))
                .options(selectinload(m.ReclaimCase.approvals))
            )
            if case_ids is not None:
                q = q.where(m.ReclaimCase.id.in_(list(case_ids)))
            rows = s.execute(q.order_by(m.ReclaimCase.id)).all()
            views = [(c.id, c.vm_name, c.pending, rule_view(c), gone) for c, gone in rows]
        out: list[Outcome] = []
        self.defer_syncs(set() if dry_run else behind)
        try:
            for case_id, name, pending, view, gone in views:
                out.append(self._run_one(case_id, name, pending, view, gone, dry_run))
        finally:
            self.end_deferred_syncs()
        return out

    def _run_one(
        self,
        case_id: int,
        name: str,
        pending: dict[str, Any] | None,
        view: CaseView,
        vm_deleted_at: datetime | None,
        dry_run: bool,
    ) -> Outcome:
        if pending:
            return self._attempt(
                case_id, name, Step(pending["step"]), pending["actor"], {}, dry_run
            )
        if vm_deleted_at is not None:  # nothing left to reclaim
            why = f"the VM was deleted outside Corral on {vm_deleted_at:%Y-%m-%d}"
            if not dry_run:
                self._close_vanished(case_id, why)
            return Outcome(case_id, name, "close", "would-do" if dry_run else "done", why)
        decision = next_step(view, self.policy, self.now)
        if isinstance(decision, Due):
            return self._attempt(case_id, name, decision.step, "scheduler", {}, dry_run)
        assert isinstance(decision, Waiting)
        return Outcome(case_id, name, "-", "waiting", decision.reason)

    def _close_vanished(self, case_id: int, why: str) -> None:
        with self.db.session() as s:
            c = self.case_row(s, case_id)
            c.state, c.closed_at, c.closed_by = State.cancelled, self.now, "scheduler"
            self.event(s, c, "reclaim-cancelled", "scheduler", reason=why)

    def _attempt(
        self, case_id: int, name: str, step: Step, actor: str, args: dict[str, Any], dry: bool
    ) -> Outcome:
        if dry:
            return Outcome(case_id, name, step, "would-do", self._describe(case_id, step))
        try:
            self.execute(case_id, step, actor, args)
        except CorralError as exc:
            return Outcome(case_id, name, step, "failed", str(exc))
        return Outcome(case_id, name, step, "done")

    def _describe(self, case_id: int, step: Step) -> str:
        with self.db.session() as s:
            to = self.recipients.address_for(self.case_row(s, case_id).owner)
        return STEPS[step].describe(self, to, case_id)

    # -- people's steps --------------------------------------------------------
    def confirm(self, case_id: int, actor: str) -> CaseRecord:
        return self.execute(case_id, Step.confirm, actor, {})

    def extend(self, case_id: int, until: date, reason: str, actor: str) -> CaseRecord:
        check_text(reason, "the reason", multiline=True)
        check_extension(until, reason, self.now.date(), self.policy)
        return self.execute(
            case_id, Step.extend, actor, {"until": until.isoformat(), "reason": reason.strip()}
        )

    def restore(self, case_id: int, actor: str) -> CaseRecord:
        return self.execute(case_id, Step.restore, actor, {})

    def cancel(self, case_id: int, actor: str, reason: str) -> CaseRecord:
        check_text(reason, "the reason", multiline=True)
        if not reason.strip():
            raise ValidationError("cancelling a case needs a reason.")
        return self.execute(case_id, Step.cancel, actor, {"reason": reason.strip()})

    def respond(
        self,
        token: str,
        action: str,
        actor: str | None = None,
        until: date | None = None,
        reason: str = "",
    ) -> CaseRecord:
        """The owner's answer through the token of the notification e-mail.

        Without an ``actor`` the answer is recorded as coming from the address the
        token was mailed to.
        """
        found = self.case_for_token(token)
        if found is None:
            raise NotFoundError("this response link is not valid (or the case is closed).")
        with self.db.session() as s:
            c = self.case_row(s, found)
            case_id, state = c.id, c.state
            actor = actor or f"{c.notified_to or 'owner'} (e-mailed token)"
        if state not in OPEN:
            raise ConflictError(f"case {case_id} is already {state}; nothing to answer.")
        if action == "confirm":
            return self.confirm(case_id, actor)
        if action == "extend":
            if until is None:
                raise ValidationError("an extension needs the new expiry date ('until').")
            return self.extend(case_id, until, reason, actor)
        raise ValidationError("action must be 'extend' or 'confirm'.")

    def approve(self, case_id: int, step: str, actor: str, note: str = "") -> CaseRecord:
        check_text(note, "the note", multiline=True)
        try:
            what = Step(step)
        except ValueError:
            raise ValidationError(
                f"{step!r} is not a step; approve quarantine, archive or delete."
            ) from None
        with self.db.session() as s:
            c = self.case_row(s, case_id)
            check_approver(rule_view(c), what, actor, self.policy)
            c.approvals.append(m.ReclaimApproval(step=what, approver=actor, at=self.now, note=note))
            self.event(s, c, "reclaim-approved", actor, step=str(what), note=note)
            return case_view(c)

    # -- one step, three phases (corral.reclaim.executor) ------------------------
    def execute(self, case_id: int, step: Step, actor: str, args: dict[str, Any]) -> CaseRecord:
        """Take ``step`` on the case now; returns the case's view."""
        return executor.execute(self, case_id, step, actor, args)

    # -- reading (corral.reclaim.queries) ----------------------------------------
    def cases(self, *, state: str | None = None, open_only: bool = False) -> list[CaseRecord]:
        return queries.cases(self, state=state, open_only=open_only)

    def case(self, case_id: int) -> CaseDetail:
        return queries.case(self, case_id)

    def history(self, vm_uuid: str) -> list[CaseEvent]:
        return queries.history(self, vm_uuid)

    def savings(self) -> Savings:
        return queries.savings(self)

    def case_for_token(self, token: str) -> int | None:
        return queries.case_for_token(self, token)


__all__ = [
    "ARCHIVE_TAG",
    "QUARANTINE_TAG",
    "Connect",
    "Crash",
    "Outcome",
    "Recipients",
    "ReclaimService",
]
