"""Restore: undo quarantine and archive and close the case."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from corral.engines.reclaim import Step
from corral.errors import ConflictError
from corral.reclaim import notices
from corral.reclaim.env import ARCHIVE_TAG, QUARANTINE_TAG, ReclaimEnv
from corral.reclaim.steps.base import Pending, StepAction
from corral.store import models as m


def bring_back(env: ReclaimEnv, case_id: int) -> None:
    """Undo quarantine and archive: snapshot gone, tags gone, autostart and power as before.

    The connection is asked for again after each write: writing metadata may
    reopen a test-driver host's connection.
    """
    with env.db.session() as s:
        c = env.case_row(s, case_id)
        snapshot, prior_state, prior_auto = c.archive_snapshot, c.prior_state, c.prior_autostart
        uuid, host = c.vm_uuid, env.host_of(s, c)
    facts = env.connect(host).read_vm(uuid)
    if facts is None:
        raise ConflictError(f"the VM of case {case_id} is no longer on host {host}.")
    if snapshot and snapshot in {snap.name for snap in facts.snapshots}:
        env.connect(host).delete_snapshot(uuid, snapshot)
    env.tags(uuid, remove=frozenset({QUARANTINE_TAG, ARCHIVE_TAG}))
    if prior_auto:
        env.connect(host).set_autostart(uuid, True)
    if prior_state in ("running", "paused") and str(facts.state) not in ("running", "paused"):
        env.connect(host).start(uuid)
    env.sync(host)


class Restore(StepAction):
    step = Step.restore
    event_kind = "restored"

    def prepare(self, env: ReclaimEnv, s: Session, c: m.ReclaimCase) -> Pending:
        return notices.mail_fields(env, c, "update")

    def act(self, env: ReclaimEnv, case_id: int, p: Pending) -> dict[str, Any]:
        bring_back(env, case_id)
        notices.inform(env, case_id, Step.restore, p)
        return {"closed_at": env.now, "closed_by": p["actor"]}
