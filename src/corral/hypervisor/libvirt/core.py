"""What every part of the libvirt adapter shares: the connection, its lock, lookups, errors."""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Callable

import libvirt

from corral.domain.model import PoolFacts, VolumeFacts
from corral.errors import HostUnreachableError, HypervisorError, NotFoundError
from corral.hypervisor.uri import redact

log = logging.getLogger(__name__)

_FLAG_REFUSED = frozenset(
    {libvirt.VIR_ERR_INVALID_ARG, libvirt.VIR_ERR_NO_SUPPORT, libvirt.VIR_ERR_ARGUMENT_UNSUPPORTED}
)


class HypervisorCore:
    """A long-lived libvirt connection to one host: state and helpers the mixins share."""

    def __init__(self, uri: str, conn: libvirt.virConnect) -> None:
        self.uri = uri
        self._conn = conn
        self._lock = threading.RLock()
        self._volume_cache: dict[
            str, tuple[tuple[str, tuple[str, ...], int], tuple[VolumeFacts, ...]]
        ] = {}
        self._by_path: tuple[tuple[PoolFacts, ...], dict[str, VolumeFacts]] | None = None
        self._disk_sources: dict[str, tuple[bytes, tuple[str, ...]]] = {}

    def watch_lifecycle(self, callback: Callable[[str, str], None]) -> bool:
        """Call ``callback(uuid, event)`` on lifecycle events; False when the connection has none.

        Needs libvirt's default event loop running (see corral.hypervisor.events).
        """

        def _cb(
            _conn: object, dom: libvirt.virDomain, event: int, _detail: int, _opaque: object
        ) -> None:
            callback(dom.UUIDString().lower(), str(event))

        try:
            self._conn.domainEventRegisterAny(
                None, libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE, _cb, None
            )
        except libvirt.libvirtError:
            return False
        return True

    def is_alive(self) -> bool:
        try:
            return bool(self._conn.isAlive())
        except libvirt.libvirtError:
            return False

    def close(self) -> None:
        with self._lock, contextlib.suppress(libvirt.libvirtError):
            self._conn.close()

    # -- persistence hooks: a real host keeps its own state ----------------------
    def _write_back(self, dom: libvirt.virDomain) -> None:
        """Nothing to do on a real host; the node-file wrapper writes test-driver state."""

    def _forget(self, uuid: str, volume_paths: list[str]) -> None:
        """Nothing to do on a real host; the node-file wrapper drops deleted objects."""

    def _write_back_volume(self, pool: str, vol: libvirt.virStorageVol) -> None:
        """Nothing to do on a real host; the node-file wrapper records a new volume."""

    # -- helpers --------------------------------------------------------------
    def _lookup(self, uuid: str, missing_ok: bool = False) -> libvirt.virDomain:
        try:
            return self._conn.lookupByUUIDString(uuid)
        except libvirt.libvirtError as exc:
            if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                if missing_ok:
                    return None
                raise NotFoundError(f"VM {uuid} is not on host {redact(self.uri)}.") from None
            raise self._error(f"look up VM {uuid}", exc) from None

    def _error(self, doing: str, exc: libvirt.libvirtError) -> HypervisorError:
        msg = (exc.get_error_message() or str(exc)).strip().rstrip(".")
        if exc.get_error_code() in (
            libvirt.VIR_ERR_SYSTEM_ERROR,
            libvirt.VIR_ERR_NO_CONNECT,
            libvirt.VIR_ERR_RPC,
        ):
            log.info("host %s stopped answering (%s): %s", redact(self.uri), doing, msg)
            return HostUnreachableError(f"the host stopped answering while trying to {doing}.")
        return HypervisorError(f"libvirt refused to {doing} on {redact(self.uri)}: {msg}.")


def _is_active(dom: libvirt.virDomain) -> bool:
    """Running, paused or otherwise holding resources; a vanished transient domain is not."""
    try:
        return bool(dom.isActive())
    except libvirt.libvirtError as exc:
        if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
            return False
        raise


def _norm(path: str) -> str:
    return os.path.normpath(path) if path else path
