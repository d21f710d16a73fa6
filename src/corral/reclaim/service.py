"""The reclamation workflow, executed: cases in the database, real libvirt actions, real e-mail.

The rules (which step, when, with which approvals) are the pure functions of
corral.engines.reclaim. This module does what they decide, in three phases per
step so that a crash anywhere is resumed and nothing is done twice:

1. claim: in one transaction the step is checked and written to the case's
   ``pending`` record together with everything it will need (the prior power
   state, the e-mail's Message-ID and encrypted response token ...);
2. act: the outside actions run, each one first looking at what is already
   done (a VM already off is not shut down again, a snapshot that exists is not
   taken again, a deleted domain is not deleted again);
3. commit: the new state, the event in the VM's history and the cleared
   ``pending`` record go in one transaction.

A step found pending is resumed from phase 2 by the next ``run`` (or by the
same command repeated). The one outside effect that cannot be looked at
afterwards is a sent e-mail: a crash after the mail server accepted a message
and before phase 3 sends it again, with the same Message-ID, so mail clients
show it once.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload
from sqlalchemy.orm.exc import StaleDataError

from corral.domain.text import bad_character, check_text
from corral.engines.costing import CostModel, price_vm
from corral.engines.reclaim import (
    OFFLINE,
    OPEN,
    TARGET,
    CaseView,
    Due,
    Policy,
    State,
    Step,
    Waiting,
    check,
    check_approver,
    check_extension,
    next_step,
)
from corral.engines.sprawl.model import VMState
from corral.errors import ConfigError, ConflictError, CorralError, NotFoundError, ValidationError
from corral.hypervisor.base import Hypervisor
from corral.inventory.service import Inventory
from corral.notify.mailer import Mail, Mailer, is_address
from corral.reclaim import messages
from corral.reclaim.views import case_view, rule_view
from corral.services.records import vm_record
from corral.store import models as m

QUARANTINE_TAG = "reclaim:quarantined"
ARCHIVE_TAG = "reclaim:archived"

Crash = Callable[[str], None]
Connect = Callable[[str], Hypervisor]


@dataclass(frozen=True)
class Recipients:
    """How an owner becomes an e-mail address (see corral.notify.mailer.SmtpSettings)."""

    domain: str | None = None
    fallback: str | None = None

    def address_for(self, owner: str | None) -> str | None:
        if owner and is_address(owner):
            return owner
        if owner and self.domain and is_address(f"{owner}@{self.domain}"):
            return f"{owner}@{self.domain}"
        return self.fallback


@dataclass(frozen=True)
class Outcome:
    case_id: int
    vm: str
    step: str
    result: str  # done | would-do | waiting | failed
    detail: str = ""


def _no_crash(_point: str) -> None:
    return None


class ReclaimService:
    def __init__(
        self,
        inventory: Inventory,
        policy: Policy,
        cost_model: CostModel,
        mailer: Mailer | None,
        *,
        recipients: Recipients | None = None,
        base_url: str | None = None,
        connect: Connect | None = None,
        crash: Crash = _no_crash,
    ) -> None:
        self.inv = inventory
        self.db = inventory.db
        self.policy = policy
        self.model = cost_model
        self.mailer = mailer
        self.recipients = recipients or Recipients()
        self.base_url = base_url
        self.connect: Connect = connect or inventory.open_host
        self.crash = crash
        # hosts to sync at the end of the current run(), per thread (the API serves several)
        self._local = threading.local()

    @property
    def mail_line(self) -> str:
        """Where this service's e-mails go, in words."""
        return self.mailer.description if self.mailer else "no mailer: owners cannot be notified"

    @property
    def now(self) -> datetime:
        return self.inv.clock()

    # -- opening cases ---------------------------------------------------------
    def flag(
        self,
        ref: str,
        *,
        category: str,
        reason: str,
        actor: str,
        evidence: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
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
            self._event(s, case, "reclaim-flagged", actor, category=category, reason=case.reason)
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
        self._local.deferred = set()
        try:
            for case_id, name, pending, view, gone in views:
                out.append(self._run_one(case_id, name, pending, view, gone, dry_run))
        finally:
            touched, self._local.deferred = self._local.deferred, None
            if touched:
                self.inv.sync(sorted(touched))
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
            c = self._case(s, case_id)
            c.state, c.closed_at, c.closed_by = State.cancelled, self.now, "scheduler"
            self._event(s, c, "reclaim-cancelled", "scheduler", reason=why)

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
            c = self._case(s, case_id)
            to = self.recipients.address_for(c.owner)
        return {
            Step.notify: f"e-mail {to or '(no address!)'}; the owner has "
            f"{self.policy.notice_days} days to answer",
            Step.quarantine: "power the VM off, disable autostart, tag it quarantined",
            Step.archive: f"take disk snapshot corral-archive-{case_id} of the powered-off VM",
            Step.delete: "undefine the VM and delete its disk volumes (cannot be undone)",
        }.get(step, str(step))

    # -- people's steps --------------------------------------------------------
    def confirm(self, case_id: int, actor: str) -> dict[str, Any]:
        return self.execute(case_id, Step.confirm, actor, {})

    def extend(self, case_id: int, until: date, reason: str, actor: str) -> dict[str, Any]:
        check_text(reason, "the reason", multiline=True)
        check_extension(until, reason, self.now.date(), self.policy)
        return self.execute(
            case_id, Step.extend, actor, {"until": until.isoformat(), "reason": reason.strip()}
        )

    def restore(self, case_id: int, actor: str) -> dict[str, Any]:
        return self.execute(case_id, Step.restore, actor, {})

    def cancel(self, case_id: int, actor: str, reason: str) -> dict[str, Any]:
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
    ) -> dict[str, Any]:
        """The owner's answer through the token of the notification e-mail.

        Without an ``actor`` the answer is recorded as coming from the address the
        token was mailed to.
        """
        found = self.case_for_token(token)
        if found is None:
            raise NotFoundError("this response link is not valid (or the case is closed).")
        with self.db.session() as s:
            c = self._case(s, found)
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

    def case_for_token(self, token: str) -> int | None:
        """The case whose e-mailed response token this is (only its SHA-256 is stored)."""
        if not 20 <= len(token) <= 128 or bad_character(token):
            return None
        digest = _hash(token)
        with self.db.session() as s:
            c = s.scalars(
                select(m.ReclaimCase).where(m.ReclaimCase.response_token_hash == digest)
            ).first()
            if c is None or not secrets.compare_digest(c.response_token_hash or "", digest):
                return None
            return c.id

    def approve(self, case_id: int, step: str, actor: str, note: str = "") -> dict[str, Any]:
        check_text(note, "the note", multiline=True)
        try:
            what = Step(step)
        except ValueError:
            raise ValidationError(
                f"{step!r} is not a step; approve quarantine, archive or delete."
            ) from None
        with self.db.session() as s:
            c = self._case(s, case_id)
            check_approver(rule_view(c), what, actor, self.policy)
            c.approvals.append(m.ReclaimApproval(step=what, approver=actor, at=self.now, note=note))
            self._event(s, c, "reclaim-approved", actor, step=str(what), note=note)
            return case_view(c)

    # -- one step, three phases ------------------------------------------------
    def execute(self, case_id: int, step: Step, actor: str, args: dict[str, Any]) -> dict[str, Any]:
        pending = self._claim(case_id, step, actor, args)
        self.crash(f"{step}:claimed")
        result = ACTIONS[step](self, case_id, pending)
        self.crash(f"{step}:acted")
        return self._commit(case_id, step, pending, result)

    def _claim(self, case_id: int, step: Step, actor: str, args: dict[str, Any]) -> dict[str, Any]:
        now = self.now
        with self.db.session() as s:
            c = self._case(s, case_id)
            if c.pending:
                if c.pending["step"] != step:
                    raise ConflictError(
                        f"case {case_id} is in the middle of {c.pending['step']}; "
                        "run 'corral reclaim run' to finish it first."
                    )
                return dict(c.pending)
            check(rule_view(c), step, now, self.policy)
            pending = {"step": str(step), "actor": actor, "at": now.isoformat(), **args}
            pending.update(PREPARE.get(step, _nothing)(self, s, c))
            c.pending = pending
            try:
                s.flush()
            except StaleDataError:
                raise ConflictError(
                    f"case {case_id} was changed by someone else meanwhile; try again."
                ) from None
            return pending

    def _commit(
        self, case_id: int, step: Step, pending: dict[str, Any], result: dict[str, Any]
    ) -> dict[str, Any]:
        with self.db.session() as s:
            c = self._case(s, case_id)
            if not c.pending or c.pending.get("step") != step:
                return case_view(c)  # another process finished it
            for key, value in result.items():
                setattr(c, key, value)
            c.state = TARGET[step]
            c.pending = None
            details = {k: v for k, v in pending.items() if k in ("reason", "until", "to")}
            self._event(s, c, EVENT_KIND[step], pending["actor"], **details)
            return case_view(c)

    # -- the actions (phase 2), each idempotent ---------------------------------
    def _notify(self, case_id: int, p: dict[str, Any]) -> dict[str, Any]:
        token = self.inv.secrets.decrypt(base64.b64decode(p["token_enc"]))
        with self.db.session() as s:
            c = self._case(s, case_id)
            respond_by = datetime.fromisoformat(p["respond_by"])
            mail = messages.notice(
                c, p["to"], token, respond_by, self.base_url, p["message_id"], self.now
            )
        self._send_once(case_id, p, mail)
        return {
            "notified_at": self.now,
            "notified_to": p["to"],
            "respond_by": respond_by,
            "response_token_hash": _hash(token),
        }

    def _quarantine(self, case_id: int, p: dict[str, Any]) -> dict[str, Any]:
        uuid, host = self._where(case_id)
        self.connect(host).power_off(uuid, grace_s=self.policy.shutdown_grace_s)
        self.connect(host).set_autostart(uuid, False)
        self._tags(uuid, add=frozenset({QUARANTINE_TAG}))
        self._sync(host)
        self._inform(case_id, Step.quarantine, p)
        return {
            "quarantined_at": self.now,
            "prior_state": p["prior_state"],
            "prior_autostart": p["prior_autostart"],
        }

    def _archive(self, case_id: int, p: dict[str, Any]) -> dict[str, Any]:
        uuid, host = self._where(case_id)
        hv = self.connect(host)
        xml = hv.domain_xml(uuid).decode("utf-8")
        facts = self.connect(host).read_vm(uuid)
        if facts is None:
            raise ConflictError(f"the VM of case {case_id} is no longer on host {host}.")
        if p["snapshot"] not in {snap.name for snap in facts.snapshots}:
            self.connect(host).create_snapshot(
                uuid, p["snapshot"], f"Corral reclamation case {case_id}: archive"
            )
        self._tags(uuid, add=frozenset({ARCHIVE_TAG}))
        self._sync(host)
        return {"archived_at": self.now, "archive_snapshot": p["snapshot"], "archive_xml": xml}

    def _delete(self, case_id: int, p: dict[str, Any]) -> dict[str, Any]:
        uuid, host = self._where(case_id)
        deleted = self.connect(host).delete_vm(uuid, delete_storage=True)
        self._sync(host)
        self._inform(case_id, Step.delete, p)
        return {
            "deleted_at": self.now,
            "deleted_volumes": deleted if deleted is not None else p.get("volumes", []),
            "closed_at": self.now,
            "closed_by": p["actor"],
        }

    def _restore(self, case_id: int, p: dict[str, Any]) -> dict[str, Any]:
        self._bring_back(case_id)
        self._inform(case_id, Step.restore, p)
        return {"closed_at": self.now, "closed_by": p["actor"]}

    def _extend(self, case_id: int, p: dict[str, Any]) -> dict[str, Any]:
        with self.db.session() as s:
            offline = self._case(s, case_id).state in OFFLINE
        if offline:
            self._bring_back(case_id)
        uuid, _ = self._where(case_id)
        self.inv.set_metadata(uuid, {"expires_on": p["until"]}, actor=p["actor"])
        self._inform(case_id, Step.extend, p)
        return {
            "extended_until": date.fromisoformat(p["until"]),
            "extend_reason": p["reason"],
            "responded_by": p["actor"],
            "closed_at": self.now,
            "closed_by": p["actor"],
        }

    def _confirm(self, case_id: int, p: dict[str, Any]) -> dict[str, Any]:
        return {"confirmed_at": self.now, "responded_by": p["actor"]}

    def _cancel(self, case_id: int, p: dict[str, Any]) -> dict[str, Any]:
        return {"closed_at": self.now, "closed_by": p["actor"]}

    def _bring_back(self, case_id: int) -> None:
        """Undo quarantine and archive: snapshot gone, tags gone, autostart and power as before.

        The connection is asked for again after each write: writing metadata may
        reopen a test-driver host's connection.
        """
        with self.db.session() as s:
            c = self._case(s, case_id)
            snapshot, prior_state, prior_auto = c.archive_snapshot, c.prior_state, c.prior_autostart
            uuid, host = c.vm_uuid, self._host_of(s, c)
        facts = self.connect(host).read_vm(uuid)
        if facts is None:
            raise ConflictError(f"the VM of case {case_id} is no longer on host {host}.")
        if snapshot and snapshot in {snap.name for snap in facts.snapshots}:
            self.connect(host).delete_snapshot(uuid, snapshot)
        self._tags(uuid, remove=frozenset({QUARANTINE_TAG, ARCHIVE_TAG}))
        if prior_auto:
            self.connect(host).set_autostart(uuid, True)
        if prior_state in ("running", "paused") and str(facts.state) not in ("running", "paused"):
            self.connect(host).start(uuid)
        self._sync(host)

    # -- helpers ---------------------------------------------------------------
    def _prepare_notify(self, _s: Session, c: m.ReclaimCase) -> dict[str, Any]:
        to = self.recipients.address_for(c.owner)
        if to is None:
            raise ConflictError(
                f"VM {c.vm_name} has no owner e-mail address and no fallback is set "
                "(CORRAL_MAIL_DOMAIN or CORRAL_MAIL_FALLBACK); its owner cannot be notified."
            )
        if self.mailer is None:
            raise ConfigError(
                "no mail server is configured (CORRAL_SMTP_URL); nobody can be notified."
            )
        token = secrets.token_urlsafe(32)
        return {
            "to": to,
            "token_enc": base64.b64encode(self.inv.secrets.encrypt(token)).decode("ascii"),
            "respond_by": (self.now + timedelta(days=self.policy.notice_days)).isoformat(),
            "message_id": f"<reclaim-{c.id}-notice-{secrets.token_hex(8)}@corral>",
        }

    def _prepare_offline(self, s: Session, c: m.ReclaimCase) -> dict[str, Any]:
        host = self._host_of(s, c)
        facts = self.connect(host).read_vm(c.vm_uuid)
        if facts is None:
            raise ConflictError(f"VM {c.vm_name} is no longer on host {host}.")
        return {
            "prior_state": str(facts.state),
            "prior_autostart": bool(facts.autostart),
            **self._mail_fields(c, "quarantine"),
        }

    def _prepare_delete(self, s: Session, c: m.ReclaimCase) -> dict[str, Any]:
        vm = s.get(m.VM, c.vm_uuid)
        volumes = [d["path"] for d in (vm.disks if vm else []) or [] if d.get("path")]
        return {"volumes": volumes, **self._mail_fields(c, "delete")}

    def _mail_fields(self, c: m.ReclaimCase, what: str) -> dict[str, Any]:
        to = c.notified_to or self.recipients.address_for(c.owner)
        if to is None or self.mailer is None:
            return {}
        return {"to": to, "message_id": f"<reclaim-{c.id}-{what}-{secrets.token_hex(8)}@corral>"}

    def _inform(self, case_id: int, step: Step, p: dict[str, Any]) -> None:
        if "message_id" not in p or self.mailer is None:
            return
        with self.db.session() as s:
            c = self._case(s, case_id)
            mail = messages.update(
                c, step, p["to"], p["message_id"], self.now, self.policy, p.get("until")
            )
        self._send_once(case_id, p, mail)

    def _send_once(self, case_id: int, p: dict[str, Any], mail: Mail) -> None:
        """Send, then note it in the pending record: a resumed step does not mail again."""
        if p.get("mailed") or self.mailer is None:
            return
        self.mailer.send(mail)
        self.crash("mail:sent")
        with self.db.session() as s:
            c = self._case(s, case_id)
            if c.pending:
                c.pending = {**c.pending, "mailed": True}
        p["mailed"] = True

    def _tags(
        self, uuid: str, *, add: frozenset[str] = frozenset(), remove: frozenset[str] = frozenset()
    ) -> None:
        with self.db.session() as s:
            vm = s.get(m.VM, uuid)
            if vm is None:
                return
            tags = set(vm.tags or [])
        new = (tags | add) - remove
        if new != tags:
            self.inv.set_metadata(uuid, {"tags": sorted(new)}, actor="reclaim")

    def _sync(self, host: str) -> None:
        """Record what an action changed; inside ``run`` once per host at the end."""
        deferred: set[str] | None = getattr(self._local, "deferred", None)
        if deferred is not None:
            deferred.add(host)
        else:
            self.inv.sync([host])

    def _where(self, case_id: int) -> tuple[str, str]:
        with self.db.session() as s:
            c = self._case(s, case_id)
            return c.vm_uuid, self._host_of(s, c)

    @staticmethod
    def _host_of(s: Session, c: m.ReclaimCase) -> str:
        vm = s.get(m.VM, c.vm_uuid)
        if vm is not None and vm.host is not None:
            return vm.host.name
        if c.host_name:
            return c.host_name
        raise ConflictError(f"VM {c.vm_name} of case {c.id} has no known host.")

    @staticmethod
    def _case(s: Session, case_id: int) -> m.ReclaimCase:
        c = s.get(m.ReclaimCase, case_id)
        if c is None:
            raise NotFoundError(f"there is no reclamation case {case_id}.")
        return c

    def _event(self, s: Session, c: m.ReclaimCase, kind: str, actor: str, **details: Any) -> None:
        s.add(
            m.Event(
                at=self.now,
                kind=kind,
                vm_uuid=c.vm_uuid,
                host_name=c.host_name,
                details={"case": c.id, "by": actor, **details},
            )
        )

    # -- reading ---------------------------------------------------------------
    def cases(self, *, state: str | None = None, open_only: bool = False) -> list[dict[str, Any]]:
        with self.db.session() as s:
            q = select(m.ReclaimCase)
            if state:
                q = q.where(m.ReclaimCase.state == state)
            if open_only:
                q = q.where(m.ReclaimCase.state.in_([str(x) for x in OPEN]))
            rows = s.scalars(q.order_by(m.ReclaimCase.id)).unique().all()
            return [case_view(c, self.now, self.policy) for c in rows]

    def case(self, case_id: int) -> dict[str, Any]:
        with self.db.session() as s:
            c = self._case(s, case_id)
            view = case_view(c, self.now, self.policy)
            view["approvals"] = [
                {"step": a.step, "approver": a.approver, "at": a.at.isoformat(), "note": a.note}
                for a in c.approvals
            ]
        view["history"] = self.history(view["vm_uuid"])
        return view

    def history(self, vm_uuid: str) -> list[dict[str, Any]]:
        """The VM's reclamation events (of every case it had), oldest first."""
        return [
            {
                "at": e["at"],
                "kind": e["kind"],
                "case": e["details"].get("case"),
                "by": e["details"].get("by"),
                "details": {k: v for k, v in e["details"].items() if k not in ("case", "by")},
            }
            for e in reversed(self.inv.events(vm=vm_uuid, limit=1000))
            if "case" in (e.get("details") or {})
        ]

    def savings(self) -> dict[str, Any]:
        """Savings actually realized so far, and the monthly rate now, per case and in total."""
        rows = self.cases()
        realized = round(sum(r["realized"] for r in rows), 2)
        monthly = round(sum(r["saving_now_monthly"] for r in rows), 2)
        currency = rows[0]["currency"] if rows else self.model.currency
        return {"currency": currency, "realized": realized, "monthly_now": monthly, "cases": rows}


def _nothing(_svc: ReclaimService, _s: Session, _c: m.ReclaimCase) -> dict[str, Any]:
    return {}


def _inform_only(svc: ReclaimService, _s: Session, c: m.ReclaimCase) -> dict[str, Any]:
    return svc._mail_fields(c, "update")


ACTIONS: dict[Step, Callable[[ReclaimService, int, dict[str, Any]], dict[str, Any]]] = {
    Step.notify: ReclaimService._notify,
    Step.quarantine: ReclaimService._quarantine,
    Step.archive: ReclaimService._archive,
    Step.delete: ReclaimService._delete,
    Step.restore: ReclaimService._restore,
    Step.extend: ReclaimService._extend,
    Step.confirm: ReclaimService._confirm,
    Step.cancel: ReclaimService._cancel,
}
PREPARE: dict[Step, Callable[[ReclaimService, Session, m.ReclaimCase], dict[str, Any]]] = {
    Step.notify: ReclaimService._prepare_notify,
    Step.quarantine: ReclaimService._prepare_offline,
    Step.archive: lambda _svc, _s, c: {"snapshot": f"corral-archive-{c.id}"},
    Step.delete: ReclaimService._prepare_delete,
    Step.restore: _inform_only,
    Step.extend: _inform_only,
}
EVENT_KIND: dict[Step, str] = {
    Step.notify: "reclaim-notified",
    Step.confirm: "reclaim-confirmed",
    Step.extend: "reclaim-extended",
    Step.quarantine: "quarantined",
    Step.archive: "archived",
    Step.delete: "reclaim-deleted",
    Step.restore: "restored",
    Step.cancel: "reclaim-cancelled",
}


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()
