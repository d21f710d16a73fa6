"""Cancel: a person closes the case; the VM is left as it is."""

from __future__ import annotations

from typing import Any

from corral.engines.reclaim import Step
from corral.reclaim.env import ReclaimEnv
from corral.reclaim.steps.base import Pending, StepAction


class Cancel(StepAction):
    step = Step.cancel
    event_kind = "reclaim-cancelled"

    def act(self, env: ReclaimEnv, case_id: int, p: Pending) -> dict[str, Any]:
        return {"closed_at": env.now, "closed_by": p["actor"]}
