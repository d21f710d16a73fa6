"""Live migrations on libvirt hosts as an evacuation run's :class:`Migrations`.

Each migration runs in a daemon thread on a connection of its own (libvirt's migration call
blocks for as long as the copy takes, and a shared connection would serialise them). A
cancel is libvirt's abortJob, asked of the source host on another connection, under a
deadline: a frozen source cannot hold the run. Where a VM runs is read from the hosts
themselves, each read bounded by the host timeout; a host that does not answer runs nothing.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from corral.engines.ha_manager.evacuation_run import MigrationPoll, MigrationState
from corral.errors import CorralError
from corral.hypervisor import deadline
from corral.hypervisor.base import Hypervisor
from corral.hypervisor.uri import redact
from corral.inventory.service import Inventory
from corral.services.ha_live_policy import MigrationPolicy

log = logging.getLogger(__name__)

#: how long a cancel (abortJob) may take to be accepted by the source host
CANCEL_TIMEOUT_S = 10.0


@dataclass
class _Thread:
    done: threading.Event = field(default_factory=threading.Event)
    error: str = ""


class LiveMigrations:
    def __init__(
        self,
        inventory: Inventory,
        uuids: Mapping[str, str],
        uris: Mapping[str, str],
        policy: MigrationPolicy,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """``uuids``: VM name -> libvirt UUID; ``uris``: host name -> libvirt URI."""
        self.inventory = inventory
        self.uuids = dict(uuids)
        self.uris = dict(uris)
        self.policy = policy
        self.clock = clock
        self._threads: dict[str, _Thread] = {}
        self._sources: dict[str, str] = {}
        #: VM -> the hosts that did not answer where it runs (its last running_on)
        self._unanswered: dict[str, tuple[str, ...]] = {}

    def now(self) -> float:
        return self.clock()

    def begin(self, vm: str, source: str, target: str) -> None:
        job, uuid, dest = _Thread(), self.uuids[vm], self.uris[target]
        opener = self.inventory.own_opener(source)
        self._threads[vm], self._sources[vm] = job, source

        def run() -> None:
            try:
                conn = opener()
                try:
                    conn.migrate_live(
                        uuid,
                        dest,
                        migration_uri=self.policy.uri,
                        unsafe=self.policy.unsafe,
                        bandwidth_mib_s=self.policy.bandwidth_mib_s,
                    )
                finally:
                    conn.close()
            except CorralError as exc:
                job.error = exc.message.replace(dest, redact(dest))  # no user info in reports
            except Exception as exc:  # any failure is the migration's outcome, reported
                job.error = repr(exc).replace(dest, redact(dest))
            finally:
                job.done.set()

        threading.Thread(target=run, name=f"corral-migrate:{vm}", daemon=True).start()

    def poll(self, vm: str) -> MigrationPoll:
        job = self._threads[vm]
        if not job.done.is_set():
            return MigrationPoll(MigrationState.pending)
        if job.error:
            return MigrationPoll(MigrationState.failed, job.error)
        return MigrationPoll(MigrationState.done)

    def cancel(self, vm: str) -> None:
        opener, uuid = self.inventory.own_opener(self._sources[vm]), self.uuids[vm]

        def abort() -> bool:
            conn: Hypervisor = opener()
            try:
                return conn.abort_job(uuid)
            finally:
                conn.close()

        out = deadline.call(f"ha-abort-migration:{uuid}", abort, CANCEL_TIMEOUT_S)
        if out.error is not None or out.status is not deadline.Status.DONE:
            log.warning("cancelling the migration of %s: %s", vm, out.error or out.status)

    def running_on(self, vm: str, hosts: tuple[str, ...]) -> tuple[str, ...]:
        states = {h: self._state(h, self.uuids[vm]) for h in hosts}
        self._unanswered[vm] = tuple(h for h, state in states.items() if state == "unknown")
        return tuple(h for h, state in states.items() if state == "running")

    def unanswered(self, vm: str) -> tuple[str, ...]:
        return self._unanswered.get(vm, ())

    def _state(self, host: str, uuid: str) -> str:
        try:
            return str(self.inventory.open_host(host).run_state(uuid))
        except CorralError as exc:
            log.info("cannot read %s on %s: %s", uuid, host, exc.message)
            return "unknown"
