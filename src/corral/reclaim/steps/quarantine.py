"""Quarantine: power the VM off, disable autostart, tag it; its prior state is kept to undo."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from corral.engines.reclaim import Step
from corral.errors import ConflictError
from corral.reclaim import notices
from corral.reclaim.env import QUARANTINE_TAG, ReclaimEnv
from corral.reclaim.steps.base import Pending, StepAction
from corral.store import models as m


class Quarantine(StepAction):
    step = Step.quarantine
    event_kind = "quarantined"

    def prepare(self, env: ReclaimEnv, s: Session, c: m.ReclaimCase) -> Pending:
        host = env.host_of(s, c)
        facts = env.connect(host).read_vm(c.vm_uuid)
        if facts is None:
            raise ConflictError(f"VM {c.vm_name} is no longer on host {host}.")
        return {
            "prior_state": str(facts.state),
            "prior_autostart": bool(facts.autostart),
            **notices.mail_fields(env, c, "quarantine"),
        }

    def act(self, env: ReclaimEnv, case_id: int, p: Pending) -> dict[str, Any]:
        uuid, host = env.where(case_id)
        env.connect(host).power_off(uuid, grace_s=env.policy.shutdown_grace_s)
        env.connect(host).set_autostart(uuid, False)
        env.tags(uuid, add=frozenset({QUARANTINE_TAG}))
        env.sync(host)
        notices.inform(env, case_id, Step.quarantine, p)
        return {
            "quarantined_at": env.now,
            "prior_state": p["prior_state"],
            "prior_autostart": p["prior_autostart"],
        }

    def describe(self, env: ReclaimEnv, owner_address: str | None, case_id: int) -> str:
        return "power the VM off, disable autostart, tag it quarantined"
