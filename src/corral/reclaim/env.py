"""What every reclamation step works with: the inventory, the policy, prices, mail, hosts, clock.

Why one environment object: the executor, the step classes, the notices and the
queries all read and write the same cases through the same database, clock,
host connections and mailer; tests swap ``connect`` (a host's hypervisor) and
``crash`` (a hook that can stop the process at a named point) here once.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from corral.engines.costing import CostModel
from corral.engines.reclaim import Policy
from corral.errors import ConflictError, NotFoundError
from corral.hypervisor.base import Hypervisor
from corral.inventory.service import Inventory
from corral.notify.mailer import Mailer, is_address
from corral.store import models as m

QUARANTINE_TAG = "reclaim:quarantined"
ARCHIVE_TAG = "reclaim:archived"

Crash = Callable[[str], None]
Connect = Callable[[str], Hypervisor]


@dataclass(frozen=True)
class Recipients:
    """How an owner becomes an e-mail address (see corral.notify.mailer.SmtpSettings)."""

    domain: str | None = None
    fallback: str | None = None

    def address_for(self, owner: str | None) -> str | None:
        if owner and is_address(owner):
            return owner
        if owner and self.domain and is_address(f"{owner}@{self.domain}"):
            return f"{owner}@{self.domain}"
        return self.fallback


def _no_crash(_point: str) -> None:
    return None


def token_hash(token: str) -> str:
    """What is stored of an owner's response token: its SHA-256, never the token."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class ReclaimEnv:
    """The shared state and small helpers of the reclamation workflow."""

    def __init__(
        self,
        inventory: Inventory,
        policy: Policy,
        cost_model: CostModel,
        mailer: Mailer | None,
        *,
        recipients: Recipients | None = None,
        base_url: str | None = None,
        connect: Connect | None = None,
        crash: Crash = _no_crash,
    ) -> None:
        self.inv = inventory
        self.db = inventory.db
        self.policy = policy
        self.model = cost_model
        self.mailer = mailer
        self.recipients = recipients or Recipients()
        self.base_url = base_url
        self.connect: Connect = connect or inventory.open_host
        self.crash = crash
        # hosts to sync at the end of the current run(), per thread (the API serves several)
        self._local = threading.local()

    @property
    def mail_line(self) -> str:
        """Where this service's e-mails go, in words."""
        return self.mailer.description if self.mailer else "no mailer: owners cannot be notified"

    @property
    def now(self) -> datetime:
        return self.inv.clock()

    def defer_syncs(self, hosts: set[str] | None = None) -> None:
        """From now on, collect the hosts to sync (starting with ``hosts``) instead of syncing
        each (see ``run``)."""
        self._local.deferred = set(hosts or ())

    def end_deferred_syncs(self) -> None:
        """Sync every host collected since ``defer_syncs``, once each."""
        touched, self._local.deferred = getattr(self._local, "deferred", None), None
        if touched:
            self.inv.sync(sorted(touched))

    def sync(self, host: str) -> None:
        """Record what an action changed; inside ``run`` once per host at the end."""
        deferred: set[str] | None = getattr(self._local, "deferred", None)
        if deferred is not None:
            deferred.add(host)
        else:
            self.inv.sync([host])

    def tags(
        self, uuid: str, *, add: frozenset[str] = frozenset(), remove: frozenset[str] = frozenset()
    ) -> None:
        with self.db.session() as s:
            vm = s.get(m.VM, uuid)
            if vm is None:
                return
            tags = set(vm.tags or [])
        new = (tags | add) - remove
        if new != tags:
            self.inv.set_metadata(uuid, {"tags": sorted(new)}, actor="reclaim")

    def where(self, case_id: int) -> tuple[str, str]:
        """The case's VM uuid and the name of the host it is on."""
        with self.db.session() as s:
            c = self.case_row(s, case_id)
            return c.vm_uuid, self.host_of(s, c)

    @staticmethod
    def host_of(s: Session, c: m.ReclaimCase) -> str:
        vm = s.get(m.VM, c.vm_uuid)
        if vm is not None and vm.host is not None:
            return vm.host.name
        if c.host_name:
            return c.host_name
        raise ConflictError(f"VM {c.vm_name} of case {c.id} has no known host.")

    @staticmethod
    def case_row(s: Session, case_id: int) -> m.ReclaimCase:
        c = s.get(m.ReclaimCase, case_id)
        if c is None:
            raise NotFoundError(f"there is no reclamation case {case_id}.")
        return c

    def event(self, s: Session, c: m.ReclaimCase, kind: str, actor: str, **details: Any) -> None:
        """Add an event to the VM's history, naming the case and who acted."""
        s.add(
            m.Event(
                at=self.now,
                kind=kind,
                vm_uuid=c.vm_uuid,
                host_name=c.host_name,
                details={"case": c.id, "by": actor, **details},
            )
        )
