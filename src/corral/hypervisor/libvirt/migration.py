"""Live migration of a running VM to another host, for maintenance evacuation.

Peer to peer: this host's daemon connects to the destination's daemon itself and QEMU
streams the memory while the guest runs. The disks stay where they are (shared storage);
the definition moves with the guest (defined on the destination, undefined here). When a
migration fails, libvirt resumes the guest on this host: it never ends up on neither.
"""

from __future__ import annotations

import libvirt

from corral.hypervisor.libvirt.core import HypervisorCore


class Migration(HypervisorCore):
    def migrate_live(
        self,
        uuid: str,
        dest_uri: str,
        *,
        migration_uri: str | None = None,
        unsafe: bool = False,
        bandwidth_mib_s: int | None = None,
    ) -> None:
        """Move running VM ``uuid`` to the daemon at ``dest_uri``.

        ``migration_uri``: where QEMU's stream goes (e.g. ``tcp://10.0.0.2``), default what
        the destination offers. ``unsafe``: the disks are shared but libvirt cannot tell (a
        local folder both hosts see, as on the test hosts). ``bandwidth_mib_s``: a cap on
        the stream, so an evacuation does not fill the network.
        """
        flags = (
            libvirt.VIR_MIGRATE_LIVE
            | libvirt.VIR_MIGRATE_PEER2PEER
            | libvirt.VIR_MIGRATE_PERSIST_DEST
            | libvirt.VIR_MIGRATE_UNDEFINE_SOURCE
        )
        if unsafe:
            flags |= libvirt.VIR_MIGRATE_UNSAFE
        params: dict[str, object] = {}
        if migration_uri:
            params[libvirt.VIR_MIGRATE_PARAM_URI] = migration_uri
        if bandwidth_mib_s:
            params[libvirt.VIR_MIGRATE_PARAM_BANDWIDTH] = int(bandwidth_mib_s)
        dom = self._lookup(uuid)  # outside the lock: a migration takes seconds
        try:
            dom.migrateToURI3(dest_uri, params, flags)
        except libvirt.libvirtError as exc:
            raise self._error(f"live-migrate VM {uuid}", exc) from None

    def abort_job(self, uuid: str) -> bool:
        """Cancel the job running on VM ``uuid`` (an outgoing migration: the guest resumes
        here). False when there was none to cancel (it already ended)."""
        dom = self._lookup(uuid)
        try:
            dom.abortJob()
        except libvirt.libvirtError as exc:
            if exc.get_error_code() == libvirt.VIR_ERR_OPERATION_INVALID:
                return False  # "no job is active on the domain"
            raise self._error(f"cancel the job of VM {uuid}", exc) from None
        return True
