"""The HA manager's live environment: real libvirt hosts, fence plugins, the wall clock.

The same :class:`~corral.engines.ha_manager.Manager` that the simulator drives runs
against this class. Every host call goes through the hypervisor layer on a persistent
connection per host, with libvirt's keepalive on it, and is bounded by
:class:`~corral.hypervisor.bounded.BoundedHypervisor`: a frozen host costs one deadline
and reads as "unreachable", never a hung round. The liveness check is the manager's own
round trip (``ping``); a connection the keepalive found dead is reopened inside the same
bounded call. A host is only ever *declared* failed by the manager (repeated checks over
the grace period), never here.

Starting a VM uses the definition read from its host while that host was alive (a dead
host cannot give it), so ``definitions`` are kept with the manager's saved state.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import cast

from corral.engines.ha_manager.env import FenceStatus, Probe, VMStatus
from corral.engines.planning.model import Fleet, PowerState
from corral.errors import CorralError, HostUnreachableError
from corral.hypervisor import deadline
from corral.hypervisor.base import Hypervisor
from corral.hypervisor.bounded import BoundedHypervisor
from corral.services.ha_fencing import FenceRunner

log = logging.getLogger(__name__)

#: libvirt keepalive: a probe every second, the connection is dead after 3 unanswered.
KEEPALIVE = (1, 3)
#: the deadline key of starts (BoundedHypervisor's key is "<this>:<host>")
_START = "ha-start"
_START_KEY = _START + ":{host}"

Opener = Callable[[], Hypervisor]


class LiveEnvironment:
    def __init__(
        self,
        hosts: Mapping[str, Opener],
        fences: FenceRunner,
        fleet: Fleet,
        definitions: Mapping[str, tuple[str, bytes]],
        *,
        timeout_s: float,
        start_timeout_s: float | None = None,
        heartbeat_dir: Path | None = None,
        heartbeat_max_age_s: float = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """``hosts``: name -> opener of a new connection; ``definitions``: VM -> (uuid, XML)."""
        self.openers = dict(hosts)
        self.fences = fences
        self.base_fleet = fleet
        self.definitions = dict(definitions)
        self.timeout_s = timeout_s
        #: a start on a cold daemon probes QEMU first (seconds): it gets the longer deadline
        self.start_timeout_s = start_timeout_s or timeout_s
        self.heartbeat_dir = heartbeat_dir
        self.heartbeat_max_age_s = heartbeat_max_age_s
        self.clock = clock
        self._conns: dict[str, Hypervisor] = {}
        self._lock = threading.Lock()
        #: VM -> host this environment started it on; (VM, host) -> why a start failed.
        self.started: dict[str, str] = {}
        self.start_errors: dict[tuple[str, str], str] = {}
        #: VM -> host it was live-migrated to (maintenance), for capacity
        self.moved: dict[str, str] = {}

    # ------------------------------------------------------- the Environment

    def now(self) -> float:
        return self.clock()

    def probe(self, host: str) -> Probe:
        try:
            self.host(host).ping()
            reachable = True
        except CorralError as exc:
            log.info("host %s failed its check: %s", host, exc)
            reachable = False
        return Probe(reachable=reachable, heartbeat=self._heartbeat(host))

    def fence_begin(self, host: str, method: str) -> None:
        self._drop(host)
        self.fences.begin(host, method)

    def fence_poll(self, host: str) -> FenceStatus:
        return self.fences.poll(host)

    def start_vm(self, vm: str, host: str) -> None:
        definition = self.definitions.get(vm)
        if definition is None:
            self.start_errors[(vm, host)] = "no stored definition"
            return
        try:
            self.host(host, self.start_timeout_s, _START).start_definition(definition[1])
        except HostUnreachableError as exc:
            # It may still start (a late call goes on): never call that a failure. Polled as
            # started; if the host is lost, the manager treats the VM as landing there.
            log.info("start of %s on %s has no answer yet: %s", vm, host, exc.message)
        except CorralError as exc:
            self.start_errors[(vm, host)] = exc.message
            log.info("starting %s on %s failed: %s", vm, host, exc.message)
            return
        self.started[vm] = host

    def vm_status(self, vm: str, host: str) -> VMStatus:
        if (vm, host) in self.start_errors:
            return VMStatus.failed
        definition = self.definitions.get(vm)
        if definition is None:
            return VMStatus.stopped
        try:
            state = self.host(host).run_state(definition[0])
        except CorralError:
            return VMStatus.starting  # cannot tell now: ask again next round
        if state == "running":
            return VMStatus.running
        if self.started.get(vm) == host:
            if deadline.still_running(_START_KEY.format(host=host)):
                return VMStatus.starting  # our start ran late and is still going: wait for it
            return VMStatus.failed  # started here by us, and stopped since
        return VMStatus.stopped

    def remove_definition(self, vm: str, host: str) -> bool | None:
        definition = self.definitions.get(vm)
        if definition is None:
            return False
        try:
            return self.host(host).undefine_stopped(definition[0])
        except CorralError as exc:
            log.info("cannot remove the stale definition of %s on %s: %s", vm, host, exc)
            return None

    def fleet(self) -> Fleet:
        """The protected fleet with the VMs this environment started (or that were
        migrated off a host in maintenance) moved to their hosts."""
        where = {**self.moved, **self.started}
        vms = [
            replace(v, host=where[v.name], state=PowerState.running) if v.name in where else v
            for v in self.base_fleet.vms
        ]
        return self.base_fleet.with_vms(vms)

    def relocated(self, vm: str, host: str) -> None:
        """``vm`` runs on ``host`` now (live-migrated): later starts elsewhere win over it."""
        self.started.pop(vm, None)
        self.moved[vm] = host

    # ------------------------------------------------------------ hosts

    def host(self, name: str, timeout_s: float | None = None, key: str = "ha") -> Hypervisor:
        """``name``'s hypervisor, every call bounded by the timeout."""
        bounded = BoundedHypervisor(
            name, lambda: self._open(name), self._release, f"{key}:{name}",
            timeout_s or self.timeout_s,
        )  # fmt: skip
        return cast(Hypervisor, bounded)

    def _open(self, name: str) -> Hypervisor:
        """The persistent connection to ``name``, (re)opened when keepalive found it dead."""
        with self._lock:
            conn = self._conns.get(name)
        if conn is not None and conn.is_alive():
            return conn
        if conn is not None:
            self._drop(name)
        conn = self.openers[name]()
        conn.keepalive(*KEEPALIVE)
        with self._lock:
            self._conns[name] = conn
        return conn

    def _release(self, name: str, *, broken: bool = False, late: bool = False) -> None:
        if broken:
            self._drop(name)
        elif late:
            with self._lock:
                self._conns.pop(name, None)  # a thread may still hold it: never close it here

    def _drop(self, name: str) -> None:
        """Forget ``name``'s connection; closed in a daemon thread, since a call stuck on a
        frozen host may still hold it and closing would wait for that call."""
        with self._lock:
            conn = self._conns.pop(name, None)
        if conn is not None:
            threading.Thread(target=_close_quietly, args=(conn,), daemon=True).start()

    def _heartbeat(self, host: str) -> bool:
        """The host's own heartbeat file on shared storage is fresh (no folder: no heartbeat)."""
        if self.heartbeat_dir is None:
            return False
        try:
            age = self.clock() - (self.heartbeat_dir / host).stat().st_mtime
        except OSError:
            return False
        return age <= self.heartbeat_max_age_s

    def close(self) -> None:
        for name in list(self._conns):
            self._drop(name)
        self.fences.close()


def _close_quietly(conn: Hypervisor) -> None:
    try:
        conn.close()
    except Exception:  # a dead peer's connection may refuse even to close
        log.debug("closing a connection failed", exc_info=True)
