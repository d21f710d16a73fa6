"""A VM whose newest restore point is older than its RPO (the backup policy's, per tier or
VM), or that was never backed up: the promise "we lose at most N minutes" no longer holds.

``grace`` is added to the RPO before it is news, so a backup running late by a few minutes
does not page anyone; VMs the policy rebuilds from a template are not in the snapshot.
"""

from __future__ import annotations

from corral.engines.alerting.kinds.base import Needs, Params, Rule, seconds
from corral.engines.alerting.model import BackupAge, Condition, Snapshot


class BackupRpoParams(Params):
    grace: str = "0s"
    #: a VM with no restore point at all is news too
    never: bool = True


class BackupRpo(Rule):
    kind = "backup_rpo"
    params_model = BackupRpoParams
    params: BackupRpoParams

    def needs(self) -> Needs:
        return Needs(facts=frozenset({"backups"}))

    def evaluate(self, snapshot: Snapshot) -> list[Condition]:
        p = self.params
        grace = seconds(p.grace)
        found = []
        for b in snapshot.backups:
            rpo = f"{b.rpo_s / 3600:g} h"
            if b.newest is None:
                if not p.never:
                    continue
                age, summary = float("inf"), f"{b.vm} has no restore point (RPO {rpo})"
            else:
                age = snapshot.now - b.newest
                if age <= b.rpo_s + grace:
                    continue
                summary = f"newest restore point of {b.vm} is {age / 3600:.1f} h old ({rpo} RPO)"
            value = age / 3600 if b.newest is not None else -1.0
            found.append(self._condition(snapshot, b, value, summary))
        return found

    def _condition(self, snapshot: Snapshot, b: BackupAge, age_h: float, summary: str) -> Condition:
        """Labelled with the VM and its host: age in hours, -1 for never backed up."""
        return self.condition(
            snapshot, "vm", b.vm, "restore_point_age_h", age_h, summary, host=b.host
        )
