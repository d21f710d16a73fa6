"""Delete: undefine the VM and delete its disk volumes (cannot be undone)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from corral.engines.reclaim import Step
from corral.reclaim import notices
from corral.reclaim.env import ReclaimEnv
from corral.reclaim.steps.base import Pending, StepAction
from corral.store import models as m


class Delete(StepAction):
    step = Step.delete
    event_kind = "reclaim-deleted"

    def prepare(self, env: ReclaimEnv, s: Session, c: m.ReclaimCase) -> Pending:
        vm = s.get(m.VM, c.vm_uuid)
        volumes = [d["path"] for d in (vm.disks if vm else []) or [] if d.get("path")]
        return {"volumes": volumes, **notices.mail_fields(env, c, "delete")}

    def act(self, env: ReclaimEnv, case_id: int, p: Pending) -> dict[str, Any]:
        uuid, host = env.where(case_id)
        deleted = env.connect(host).delete_vm(uuid, delete_storage=True)
        env.sync(host)
        notices.inform(env, case_id, Step.delete, p)
        return {
            "deleted_at": env.now,
            "deleted_volumes": deleted if deleted is not None else p.get("volumes", []),
            "closed_at": env.now,
            "closed_by": p["actor"],
        }

    def describe(self, env: ReclaimEnv, owner_address: str | None, case_id: int) -> str:
        return "undefine the VM and delete its disk volumes (cannot be undone)"
