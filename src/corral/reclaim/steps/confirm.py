"""Confirm: the owner agrees the VM may go; the case moves on without waiting for the date."""

from __future__ import annotations

from typing import Any

from corral.engines.reclaim import Step
from corral.reclaim.env import ReclaimEnv
from corral.reclaim.steps.base import Pending, StepAction


class Confirm(StepAction):
    step = Step.confirm
    event_kind = "reclaim-confirmed"

    def act(self, env: ReclaimEnv, case_id: int, p: Pending) -> dict[str, Any]:
        return {"confirmed_at": env.now, "responded_by": p["actor"]}
