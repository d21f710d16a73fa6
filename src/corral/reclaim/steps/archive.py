"""Archive: a disk snapshot of the powered-off VM, and its definition kept in the case."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from corral.engines.reclaim import Step
from corral.errors import ConflictError
from corral.reclaim.env import ARCHIVE_TAG, ReclaimEnv
from corral.reclaim.steps.base import Pending, StepAction
from corral.store import models as m


class Archive(StepAction):
    step = Step.archive
    event_kind = "archived"

    def prepare(self, env: ReclaimEnv, s: Session, c: m.ReclaimCase) -> Pending:
        return {"snapshot": f"corral-archive-{c.id}"}

    def act(self, env: ReclaimEnv, case_id: int, p: Pending) -> dict[str, Any]:
        uuid, host = env.where(case_id)
        xml = env.connect(host).domain_xml(uuid).decode("utf-8")
        facts = env.connect(host).read_vm(uuid)
        if facts is None:
            raise ConflictError(f"the VM of case {case_id} is no longer on host {host}.")
        if p["snapshot"] not in {snap.name for snap in facts.snapshots}:
            env.connect(host).create_snapshot(
                uuid, p["snapshot"], f"Corral reclamation case {case_id}: archive"
            )
        env.tags(uuid, add=frozenset({ARCHIVE_TAG}))
        env.sync(host)
        return {"archived_at": env.now, "archive_snapshot": p["snapshot"], "archive_xml": xml}

    def describe(self, env: ReclaimEnv, owner_address: str | None, case_id: int) -> str:
        return f"take disk snapshot corral-archive-{case_id} of the powered-off VM"
