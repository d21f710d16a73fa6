"""Lifecycle actions: metadata writes, start, shutdown, power off, autostart, snapshots."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import libvirt
from lxml import etree

from corral.domain.model import OwnerMeta
from corral.hypervisor import domxml
from corral.hypervisor.libvirt.core import _FLAG_REFUSED, HypervisorCore, _is_active
from corral.hypervisor.xmlsafe import to_string

log = logging.getLogger(__name__)

POWER_OFF_POLL_S = 0.2
# A paused, suspended or crashed guest cannot react to the power button.
_UNRESPONSIVE = frozenset(
    {libvirt.VIR_DOMAIN_PAUSED, libvirt.VIR_DOMAIN_PMSUSPENDED, libvirt.VIR_DOMAIN_CRASHED}
)


class Actions(HypervisorCore):
    """Changes to a VM's state; each ends in the ``_write_back`` hook (node files only)."""

    # -- writing --------------------------------------------------------------
    def set_metadata(
        self, uuid: str, meta: OwnerMeta, *, is_template: bool = False, revision: int | None = None
    ) -> None:
        element = domxml.build_metadata(meta, is_template=is_template, revision=revision)
        with self._lock:
            dom = self._lookup(uuid)
            flags = libvirt.VIR_DOMAIN_AFFECT_CONFIG
            if dom.isActive():
                flags |= libvirt.VIR_DOMAIN_AFFECT_LIVE
            if not dom.isPersistent():
                flags = libvirt.VIR_DOMAIN_AFFECT_LIVE
            try:
                dom.setMetadata(
                    libvirt.VIR_DOMAIN_METADATA_ELEMENT,
                    element,
                    domxml.METADATA_PREFIX,
                    domxml.METADATA_NS,
                    flags,
                )
            except libvirt.libvirtError as exc:
                raise self._error(f"write metadata of VM {uuid}", exc) from None
            self._write_back(dom)

    def start(self, uuid: str) -> None:
        self._act(uuid, "start", lambda d: d.create())

    def shutdown(self, uuid: str, *, force: bool = False) -> None:
        self._act(uuid, "stop", lambda d: d.destroy() if force else d.shutdown())

    def create_snapshot(self, uuid: str, name: str, description: str | None = None) -> None:
        snap = etree.Element("domainsnapshot")
        etree.SubElement(snap, "name").text = name
        if description:
            etree.SubElement(snap, "description").text = description
        self._act(uuid, "snapshot", lambda d: d.snapshotCreateXML(to_string(snap), 0))

    def delete_snapshot(self, uuid: str, name: str) -> None:
        self._act(uuid, "delete snapshot of", lambda d: d.snapshotLookupByName(name, 0).delete(0))

    def _act(self, uuid: str, verb: str, action: Callable[[libvirt.virDomain], object]) -> None:
        with self._lock:
            dom = self._lookup(uuid)
            try:
                action(dom)
            except libvirt.libvirtError as exc:
                raise self._error(f"{verb} VM {uuid}", exc) from None
            self._write_back(dom)

    # -- reclamation actions -----------------------------------------------------
    def power_off(self, uuid: str, *, grace_s: float = 60.0) -> str:
        """Press the ACPI power button, wait up to ``grace_s``, then pull the plug.

        Returns "already-off" (nothing done), "shutdown" (the guest obeyed) or "forced".
        The connection lock is not held while waiting, so syncs go on meanwhile.
        """
        with self._lock:
            dom = self._lookup(uuid)
            try:
                if not _is_active(dom):
                    return "already-off"
                if grace_s <= 0 or dom.state()[0] in _UNRESPONSIVE:
                    return self._force_off(dom, uuid)
                if not _press_power_button(dom):
                    return self._force_off(dom, uuid)
            except libvirt.libvirtError as exc:
                raise self._error(f"power off VM {uuid}", exc) from None
        if self._wait_off(dom, uuid, grace_s):
            with self._lock:
                self._write_back(dom)
            return "shutdown"
        with self._lock:
            return self._force_off(dom, uuid)

    def _force_off(self, dom: libvirt.virDomain, uuid: str) -> str:
        """Destroy; "shutdown" when the guest turned itself off just before."""
        try:
            dom.destroy()
            outcome = "forced"
        except libvirt.libvirtError as exc:
            if exc.get_error_code() not in (
                libvirt.VIR_ERR_OPERATION_INVALID,
                libvirt.VIR_ERR_NO_DOMAIN,
            ):
                raise self._error(f"power off VM {uuid}", exc) from None
            outcome = "shutdown"
        self._write_back(dom)
        return outcome

    def _wait_off(self, dom: libvirt.virDomain, uuid: str, grace_s: float) -> bool:
        deadline = time.monotonic() + grace_s
        while True:
            try:
                if not _is_active(dom):
                    return True
            except libvirt.libvirtError as exc:
                raise self._error(f"power off VM {uuid}", exc) from None
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            time.sleep(min(POWER_OFF_POLL_S, left))

    def set_autostart(self, uuid: str, enabled: bool) -> None:
        with self._lock:
            dom = self._lookup(uuid)
            try:
                if bool(dom.autostart()) == enabled:
                    return
                dom.setAutostart(int(enabled))
            except libvirt.libvirtError as exc:
                verb = "enable" if enabled else "disable"
                raise self._error(f"{verb} autostart of VM {uuid}", exc) from None
            self._write_back(dom)


def _press_power_button(dom: libvirt.virDomain) -> bool:
    """Ask for an ACPI shutdown; False when the guest cannot be asked (no ACPI, say)."""
    try:
        dom.shutdownFlags(libvirt.VIR_DOMAIN_SHUTDOWN_ACPI_POWER_BTN)
    except libvirt.libvirtError as exc:
        if exc.get_error_code() not in _FLAG_REFUSED:
            log.info("ACPI shutdown of %s refused: %s", dom.name(), exc.get_error_message())
            return False
        dom.shutdown()  # a driver without shutdown modes (the test driver)
    return True
