"""Extend: the owner keeps the VM until a new date; an offline VM comes back first."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy.orm import Session

from corral.engines.reclaim import OFFLINE, Step
from corral.reclaim import notices
from corral.reclaim.env import ReclaimEnv
from corral.reclaim.steps.base import Pending, StepAction
from corral.reclaim.steps.restore import bring_back
from corral.store import models as m


class Extend(StepAction):
    step = Step.extend
    event_kind = "reclaim-extended"

    def prepare(self, env: ReclaimEnv, s: Session, c: m.ReclaimCase) -> Pending:
        return notices.mail_fields(env, c, "update")

    def act(self, env: ReclaimEnv, case_id: int, p: Pending) -> dict[str, Any]:
        with env.db.session() as s:
            offline = env.case_row(s, case_id).state in OFFLINE
        if offline:
            bring_back(env, case_id)
        uuid, _ = env.where(case_id)
        env.inv.set_metadata(uuid, {"expires_on": p["until"]}, actor=p["actor"])
        notices.inform(env, case_id, Step.extend, p)
        return {
            "extended_until": date.fromisoformat(p["until"]),
            "extend_reason": p["reason"],
            "responded_by": p["actor"],
            "closed_at": env.now,
            "closed_by": p["actor"],
        }
