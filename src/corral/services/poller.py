"""Sharded polling: keep 10,000 hosts current, each read once per cycle at its own time.

A shard is one process. Each round it claims the hosts that are due (their slot in the cycle
came, see :mod:`corral.engines.polling`) or wanted (a libvirt lifecycle event arrived on their
connection), reads them through a bounded set of open connections, and hashes what it saw
into one fingerprint per host. A host whose fingerprint did not change costs no database work
beyond its schedule row; the changed ones go through the inventory sync together, replaying
the read just made rather than reading the host twice. Shards coordinate only through lease
rows (:mod:`corral.services.poll_store`): start more to read faster, kill one and the others
take its hosts when its leases run out.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import threading
import time
import uuid as uuidlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, cast

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from corral.engines.polling import host_fingerprint, next_due, phases
from corral.errors import CorralError, HostUnreachableError
from corral.hypervisor import deadline
from corral.hypervisor.base import Hypervisor
from corral.hypervisor.connlimit import BoundedConnections
from corral.hypervisor.events import ensure_event_loop
from corral.inventory.sync import SyncService
from corral.services.poll_store import Claimed, PollStore, ReadResult
from corral.store import models as m

if TYPE_CHECKING:
    from corral.config import Settings
    from corral.domain.model import HostInventory
    from corral.inventory.service import Inventory

log = logging.getLogger(__name__)
#: The longest pause after a round the database refused.
RETRY_PAUSE_S = 5.0

Clock = Callable[[], datetime]


@dataclass(frozen=True, slots=True)
class PollConfig:
    cycle_s: float = 300.0
    max_connections: int = 32
    lease_s: float = 60.0
    batch: int = 200  # hosts claimed per round
    debounce_s: float = 1.0  # events on a host within this long become one read
    tick_s: float = 0.5  # how often an idle shard looks for due hosts
    events: bool = True

    @classmethod
    def from_settings(cls, settings: Settings) -> PollConfig:
        return cls(
            cycle_s=settings.poll_cycle_s,
            max_connections=settings.poll_max_connections,
            lease_s=settings.poll_lease_s,
        )


@dataclass
class ShardStats:
    rounds: int = 0
    reads: int = 0
    unchanged: int = 0  # fingerprint equal: no database work
    synced: int = 0
    failed: int = 0
    failed_rounds: int = 0  # rounds the database refused (see Shard.run)
    event_reads: int = 0
    read_s: float = 0.0
    sync_s: float = 0.0
    per_round: list[tuple[int, int, float]] = field(default_factory=list)  # reads, synced, s


class _Replay:
    """What the sync asks of a host, answered from the read this round already made."""

    def __init__(
        self,
        seen: HostInventory | None,
        error: CorralError | None,
        known: Mapping[str, str],
        again: Callable[[Mapping[str, str] | None], HostInventory],
    ) -> None:
        self._seen, self._error, self._known, self._again = seen, error, dict(known), again

    def read_inventory(self, known: Mapping[str, str] | None = None) -> HostInventory:
        if self._error is not None:
            raise self._error
        if self._seen is not None and dict(known or {}) == self._known:
            return self._seen
        return self._again(known)  # the store moved since this round's read: read afresh


def shard_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuidlib.uuid4().hex[:6]}"


class Shard:
    def __init__(
        self,
        inventory: Inventory,
        config: PollConfig,
        owner: str | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.inv = inventory
        self.config = config
        self.owner = owner or shard_name()
        self.clock = clock or inventory.clock
        self.store = PollStore(inventory.db)
        if config.events:
            ensure_event_loop()  # before any connection is opened, or it has no events
        self.conns = BoundedConnections(
            config.max_connections, self._subscribe if config.events else None
        )
        self.stats = ShardStats()
        self._phase: dict[str, float] = {}
        self._ids: dict[str, int] = {}
        self._planned_at = 0.0
        self._dirty: dict[int, float] = {}  # host id -> first event's monotonic time
        self._lock = threading.Lock()
        self._stop = threading.Event()

    # -- the loop ---------------------------------------------------------------
    def run(self, duration: float | None = None) -> ShardStats:
        """Poll until ``stop()`` (or for ``duration`` seconds). A round the database refuses
        (a lost connection, a deadlock, a server restarting) is logged and counted, and the
        shard goes on after a pause: the hosts it had claimed are claimed again when their
        leases run out. A poller that ended on one such error would leave its hosts unread."""
        end = None if duration is None else time.monotonic() + duration
        try:
            while not self._stop.is_set() and (end is None or time.monotonic() < end):
                try:
                    handled = self.round()
                except (CorralError, SQLAlchemyError) as exc:
                    self.stats.failed_rounds += 1
                    log.warning("poller round failed, trying again: %s", _one_line(exc))
                    self._stop.wait(min(self.config.lease_s, RETRY_PAUSE_S))
                    continue
                if handled == 0:
                    self._stop.wait(self.config.tick_s)
        finally:
            self.conns.close_all()
        return self.stats

    def stop(self) -> None:
        self._stop.set()

    def round(self) -> int:
        """Claim what is due, read it, record it; the number of hosts handled."""
        self._plan()
        self._flush_events()
        claimed_at = self.clock()
        claimed = self.store.claim(self.owner, claimed_at, self.config.lease_s, self.config.batch)
        if not claimed:
            return 0
        if any(c.name not in self._phase for c in claimed):
            self._plan(force=True)
        self._ids.update({c.name: c.host_id for c in claimed})
        results = self._read(claimed, claimed_at)
        read_at = self.clock()
        due = {
            c.host_id: datetime.fromtimestamp(
                next_due(self._phase.get(c.name, 0.0), read_at.timestamp(), self.config.cycle_s),
                read_at.tzinfo,
            )
            for c in claimed
        }
        self.store.finish(self.owner, claimed_at, read_at, results, due)
        self.stats.rounds += 1
        return len(claimed)

    def _plan(self, *, force: bool = False) -> None:
        """Every host's phase in the cycle, and a schedule row for each new host."""
        every = min(30.0, self.config.cycle_s / 10)
        if not force and time.monotonic() - self._planned_at < every:
            return
        names = self.store.host_names()
        self._phase = phases(names, self.config.cycle_s)
        self.store.add_missing(self.clock(), self._phase, self.config.cycle_s)
        self._planned_at = time.monotonic()

    # -- events -----------------------------------------------------------------
    def _subscribe(self, name: str, hv: Hypervisor) -> bool:
        def mark(_uuid: str, _event: str) -> None:
            host_id = self._ids.get(name)
            if host_id is not None:
                with self._lock:
                    self._dirty.setdefault(host_id, time.monotonic())

        return hv.watch_lifecycle(mark)

    def _flush_events(self) -> None:
        """Hosts whose first event is older than the debounce are wanted now (one read for a
        burst of events); the claim takes wanted hosts first."""
        cutoff = time.monotonic() - self.config.debounce_s
        with self._lock:
            ready = [h for h, t in self._dirty.items() if t <= cutoff]
            for h in ready:
                del self._dirty[h]
        if ready:
            self.store.want(ready, self.clock())

    # -- reading ----------------------------------------------------------------
    def _read(self, claimed: Sequence[Claimed], claimed_at: datetime) -> list[ReadResult]:
        known = self._known([c.host_id for c in claimed])
        key = {f"poll:{self.owner}:{c.name}": c for c in claimed}
        tasks = {k: self._reader(c, known[c.host_id]) for k, c in key.items()}
        t0 = time.perf_counter()
        outcomes = deadline.run_all(
            tasks,
            self.inv.access.timeout_s,
            max_parallel=self.config.max_connections,
            narrow={k for k, c in key.items() if c.uri.startswith("test:")},
            narrow_parallel=os.cpu_count() or 1,
        )
        self.stats.read_s += time.perf_counter() - t0
        results: dict[int, ReadResult] = {}
        replays: dict[str, _Replay] = {}
        for k, out in outcomes.items():
            c = key[k]
            self.stats.reads += 1
            self.stats.event_reads += self._reason(c, claimed_at) == "event"
            seen, error = self._outcome(c, out)
            if seen is not None:
                fp = _fingerprint(seen, known[c.host_id])
                if fp == c.fingerprint and c.status == "ok":
                    self.stats.unchanged += 1
                    results[c.host_id] = self._result(c, claimed_at, fp, None)
                    continue
                replays[c.name] = _Replay(seen, None, known[c.host_id], self._again(c))
                results[c.host_id] = self._result(c, claimed_at, fp, None)
            elif isinstance(error, CorralError):
                replays[c.name] = _Replay(None, error, known[c.host_id], self._again(c))
                results[c.host_id] = self._result(c, claimed_at, "", error.message)
            else:
                self.stats.failed += 1
                results[c.host_id] = self._result(c, claimed_at, c.fingerprint, str(error))
        if replays:
            self._sync(replays, claimed, claimed_at, results)
        return list(results.values())

    def _reader(self, c: Claimed, known: Mapping[str, str]) -> Callable[[], HostInventory]:
        opener = self._opener(c)

        def read() -> HostInventory:
            with self.conns.borrow(c.name, c.uri, opener) as hv:
                return hv.read_inventory(known)

        return read

    def _again(self, c: Claimed) -> Callable[[Mapping[str, str] | None], HostInventory]:
        opener = self._opener(c)

        def read(known: Mapping[str, str] | None) -> HostInventory:
            with self.conns.borrow(c.name, c.uri, opener) as hv:
                return hv.read_inventory(known)

        return read

    def _opener(self, c: Claimed) -> Callable[[], Hypervisor]:
        from corral.hypervisor.libvirt import Credentials, connect  # libvirt: on use

        creds = None
        if c.username or c.secret:
            password = self.inv.secrets.decrypt(c.secret) if c.secret else None
            creds = Credentials(c.username, password)
        uri, access = c.uri, self.inv.access
        return lambda: connect(uri, creds, access=access)

    def _outcome(
        self, c: Claimed, out: deadline.Outcome[HostInventory]
    ) -> tuple[HostInventory | None, BaseException | None]:
        if out.status is deadline.Status.BUSY:
            return None, RuntimeError("an earlier read of this host has not returned yet")
        if out.status is deadline.Status.LATE:
            self.conns.drop(c.name, close=False)
            wait = self.inv.access.timeout_s
            return None, HostUnreachableError(f"the host did not answer within {wait:g} s.")
        if out.error is not None:
            if isinstance(out.error, CorralError):
                self.conns.drop(c.name)
            else:
                log.warning("reading host %s failed: %r", c.name, out.error)
            return None, out.error
        return out.value, None

    def _known(self, host_ids: list[int]) -> dict[int, dict[str, str]]:
        """Each host's VM fingerprints as stored: the same map the sync builds."""
        out: dict[int, dict[str, str]] = {h: {} for h in host_ids}
        with self.inv.db.session() as s:
            rows = s.execute(
                select(m.VM.host_id, m.VM.uuid, m.VM.fingerprint).where(
                    m.VM.host_id.in_(host_ids), m.VM.deleted_at.is_(None)
                )
            )
            for host_id, uuid, fp in rows:
                if host_id is not None:
                    out[host_id][uuid] = fp
        return out

    def _sync(
        self,
        replays: dict[str, _Replay],
        claimed: Sequence[Claimed],
        claimed_at: datetime,
        results: dict[int, ReadResult],
    ) -> None:
        """The changed and failed hosts through the inventory sync, in one transaction."""

        def connector(host: m.Host) -> Hypervisor:
            return cast(Hypervisor, replays[host.name])

        def release(name: str, *, broken: bool = False, late: bool = False, **_: object) -> None:
            if broken or late:
                self.conns.drop(name, close=not late)

        service = SyncService(
            self.inv.db,
            connector,
            release,
            self.inv.clock,
            timeout_s=self.inv.access.timeout_s,
            scope=f"poll-sync:{self.owner}:",
        )
        by_name = {c.name: c for c in claimed}
        t0 = time.perf_counter()
        try:
            report = service.sync(sorted(replays))
        except CorralError as exc:  # e.g. a host removed since it was claimed
            log.warning("poller sync of %d hosts failed: %s", len(replays), exc.message)
            for name in replays:
                c = by_name[name]
                results[c.host_id] = self._result(c, claimed_at, "", exc.message)
            return
        finally:
            self.stats.sync_s += time.perf_counter() - t0
        for hr in report.hosts:
            c = by_name[hr.host]
            if hr.status == "ok":
                self.stats.synced += 1
            else:
                self.stats.failed += 1
                results[c.host_id] = self._result(c, claimed_at, "", hr.error)

    def _reason(self, c: Claimed, claimed_at: datetime) -> str:
        return "event" if c.wanted and c.due_at > claimed_at else "schedule"

    def _result(self, c: Claimed, claimed_at: datetime, fp: str, error: str | None) -> ReadResult:
        return ReadResult(
            c.host_id, fp, error, self._reason(c, claimed_at), scheduled=c.due_at <= claimed_at
        )


def _fingerprint(seen: HostInventory, known: Mapping[str, str]) -> str:
    vms = {uuid: known.get(uuid, "") for uuid in seen.unchanged}
    vms.update({vm.uuid: vm.fingerprint or "" for vm in seen.vms})
    return host_fingerprint(repr(seen.host), vms, repr((seen.pools, seen.networks)))


def run_shards(count: int, child: Sequence[str], duration: float | None = None) -> None:
    """Run ``count`` shard processes (``child`` is one shard's command line, running until
    stopped) for ``duration`` seconds or until they all end; a shard killed by a signal is
    started again (its hosts are meanwhile read by the others once its leases run out)."""
    end = None if duration is None else time.monotonic() + duration
    procs = [subprocess.Popen(list(child)) for _ in range(count)]
    try:
        while end is None or time.monotonic() < end:
            codes = [p.poll() for p in procs]
            if all(rc is not None and rc >= 0 for rc in codes):
                break
            for i, rc in enumerate(codes):
                if rc is not None and rc < 0:
                    log.warning(
                        "shard pid %d died (signal %d); starting another", procs[i].pid, -rc
                    )
                    procs[i] = subprocess.Popen(list(child))
            time.sleep(0.5)
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
        for p in procs:
            p.wait()


def _one_line(exc: Exception) -> str:
    """What went wrong, without the statement or its parameters (a database error carries
    both in its text)."""
    if isinstance(exc, CorralError):
        return exc.message.split("\n")[0]
    cause = getattr(exc, "orig", None) or ""
    return f"{exc.__class__.__name__}: {cause}".split("\n")[0]


__all__ = ["PollConfig", "Shard", "ShardStats", "run_shards", "shard_name"]
