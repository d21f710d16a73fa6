"""Delete: undefine the VM and delete its disk volumes (cannot be undone)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from corral.domain.model import EventKind
from corral.engines.reclaim import Step
from corral.errors import ConflictError
from corral.reclaim import notices
from corral.reclaim.env import ReclaimEnv
from corral.reclaim.steps.base import Pending, StepAction
from corral.store import models as m
from corral.store.network_users import recount


class Delete(StepAction):
    step = Step.delete
    event_kind = "reclaim-deleted"

    def prepare(self, env: ReclaimEnv, s: Session, c: m.ReclaimCase) -> Pending:
        vm = s.get(m.VM, c.vm_uuid)
        volumes = [d["path"] for d in (vm.disks if vm else []) or [] if d.get("path")]
        return {"volumes": volumes, **notices.mail_fields(env, c, "delete")}

    def act(self, env: ReclaimEnv, case_id: int, p: Pending) -> dict[str, Any]:
        uuid, host = env.where(case_id)
        hv = env.connect(host)
        # A volume of a shared storage may be a disk or a backing file of a VM on another host.
        used = env.inv.storage_users_elsewhere(host, uuid, hv.volumes_to_delete(uuid))
        if used:
            path, users = min(used.items())
            raise ConflictError(
                f"VM {uuid} was not deleted: its volume {path} is also used by {', '.join(users)} "
                "as a disk or as the backing file of a linked clone; delete or flatten those "
                "VMs first."
            )
        deleted = hv.delete_vm(uuid, delete_storage=True)
        env.sync(host)
        notices.inform(env, case_id, Step.delete, p)
        return {
            "deleted_at": env.now,
            "deleted_volumes": deleted if deleted is not None else p.get("volumes", []),
            "closed_at": env.now,
            "closed_by": p["actor"],
        }

    def on_commit(self, env: ReclaimEnv, s: Session, c: m.ReclaimCase) -> None:
        """The deleted VM leaves the inventory with the step itself, not at the next sync.

        In the same transaction as the case's commit: a process killed after it leaves no
        deleted VM listed as live, and no deleted volume listed as present.
        """
        vm = s.get(m.VM, c.vm_uuid)
        if vm is None or vm.deleted_at is not None:
            return  # a sync saw it gone first
        vm.deleted_at = vm.updated_at = env.now
        recount(s, [vm.host_id])  # its networks lose a user
        gone = set(c.deleted_volumes or [])
        if gone and vm.host_id is not None:
            pools = select(m.Pool.id).where(m.Pool.host_id == vm.host_id)
            for vol in s.scalars(
                select(m.Volume).where(m.Volume.pool_id.in_(pools), m.Volume.path.in_(gone))
            ):
                s.delete(vol)
        host = vm.host.name if vm.host is not None else c.host_name
        s.add(
            m.Event(
                at=env.now,
                kind=EventKind.deleted.value,
                vm_uuid=vm.uuid,
                host_name=host,
                details={"name": vm.name, "by": "reclaim"},  # as a sync records it
            )
        )

    def describe(self, env: ReclaimEnv, owner_address: str | None, case_id: int) -> str:
        return "undefine the VM and delete its disk volumes (cannot be undone)"
