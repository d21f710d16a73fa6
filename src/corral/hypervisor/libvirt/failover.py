"""What the live HA manager asks of a host: is it alive, and start a VM from its definition.

Liveness has two parts. libvirt's keepalive on the long-lived connection lets the client
library notice a dead peer by itself (the connection then reports itself dead); a round
trip of the manager's own (``ping``) proves the daemon still serves requests. Starting is
from a definition kept while the VM's old host was alive (a dead host cannot give it):
defined on the target, then started; a VM already running there is left alone, so a
manager that resumes after a crash never starts a second copy on the same host.
"""

from __future__ import annotations

import enum

import libvirt

from corral.hypervisor.libvirt.core import HypervisorCore, _is_active
from corral.hypervisor.xmlsafe import parse, to_string


class RunState(enum.StrEnum):
    running = "running"
    #: Defined here but not running (shut off, crashed, never started).
    stopped = "stopped"
    #: Not defined on this host at all.
    absent = "absent"


class Failover(HypervisorCore):
    def keepalive(self, interval_s: int, count: int) -> bool:
        """Ask libvirt to probe the peer every ``interval_s`` and give up after ``count``
        silent probes; False when the connection cannot (no event loop, a local driver)."""
        try:
            return bool(self._conn.setKeepAlive(interval_s, count) == 0)
        except libvirt.libvirtError:
            return False

    def ping(self) -> None:
        """One round trip to the daemon; HostUnreachableError (or HypervisorError) if none."""
        with self._lock:
            try:
                self._conn.getLibVersion()
            except libvirt.libvirtError as exc:
                raise self._error("answer a liveness check", exc) from None

    def run_state(self, uuid: str) -> RunState:
        with self._lock:
            dom = self._lookup(uuid, missing_ok=True)
            if dom is None:
                return RunState.absent
            try:
                return RunState.running if _is_active(dom) else RunState.stopped
            except libvirt.libvirtError as exc:
                raise self._error(f"read the state of VM {uuid}", exc) from None

    def start_definition(self, xml: bytes) -> None:
        """Define the VM from ``xml`` (libvirt's own inactive XML) and start it; a VM of the
        same UUID already running here is left as it is."""
        uuid = (parse(xml).findtext("uuid") or "").strip().lower()
        with self._lock:
            dom = self._lookup(uuid, missing_ok=True) if uuid else None
            if dom is not None and _is_active(dom):
                return
            try:
                dom = self._conn.defineXML(to_string(parse(xml)))
                dom.create()
            except libvirt.libvirtError as exc:
                raise self._error(f"start VM {uuid or '(no uuid)'}", exc) from None

    def undefine_stopped(self, uuid: str) -> bool:
        """Remove the definition of VM ``uuid`` if it is defined here and not running (a copy
        left behind on a host the VM was recovered from); True when one was removed."""
        with self._lock:
            dom = self._lookup(uuid, missing_ok=True)
            if dom is None or _is_active(dom):
                return False
            try:
                dom.undefineFlags(_UNDEFINE_KEEP_NOTHING)
            except libvirt.libvirtError as exc:
                raise self._error(f"undefine the stale copy of VM {uuid}", exc) from None
            return True


#: managed save images, snapshot and checkpoint metadata and NVRAM go with the definition
_UNDEFINE_KEEP_NOTHING = (
    libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE
    | libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA
    | libvirt.VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA
    | libvirt.VIR_DOMAIN_UNDEFINE_NVRAM
)
