"""One reclamation step: what it fixes at claim time, what it does, what it records.

Why a class per step: the executor runs every step the same way (claim, act,
commit); what differs — the facts to fix before acting, the outside actions,
the case fields written, the event's name and the dry-run sentence — sits in
the step's own small class.
"""

from __future__ import annotations

from typing import Any, ClassVar

from sqlalchemy.orm import Session

from corral.engines.reclaim import Step
from corral.reclaim.env import ReclaimEnv
from corral.store import models as m

Pending = dict[str, Any]


class StepAction:
    """Base: a step with nothing to prepare; ``act`` must look before it acts (idempotent)."""

    step: ClassVar[Step]
    event_kind: ClassVar[str]

    def prepare(self, env: ReclaimEnv, s: Session, c: m.ReclaimCase) -> Pending:
        """Facts fixed in the claim's transaction (prior state, mail address, snapshot name)."""
        return {}

    def act(self, env: ReclaimEnv, case_id: int, p: Pending) -> dict[str, Any]:
        """Do the outside actions; return the case fields to set when the step is committed."""
        raise NotImplementedError

    def on_commit(self, env: ReclaimEnv, s: Session, c: m.ReclaimCase) -> None:
        """What else changes in the commit's transaction (e.g. the inventory after a delete)."""
        return None

    def describe(self, env: ReclaimEnv, owner_address: str | None, case_id: int) -> str:
        """What a dry run says this step would do."""
        return str(self.step)
