"""The narrow interface every hypervisor connection offers to the rest of Corral."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Protocol

from corral.domain.model import HostInventory, OwnerMeta, VMFacts


class Hypervisor(Protocol):
    """One open connection to one hypervisor host.

    ``read_inventory`` takes the fingerprints Corral already holds so that an
    unchanged domain costs only a listing, never a full parse: those come back
    in ``HostInventory.unchanged``.
    """

    uri: str

    def read_inventory(self, known: Mapping[str, str] | None = None) -> HostInventory: ...

    def host_uuid(self) -> str | None:
        """libvirt's UUID of the host (None when the driver has none, as the test driver)."""
        ...

    def read_vm(self, uuid: str) -> VMFacts | None: ...

    def set_metadata(
        self, uuid: str, meta: OwnerMeta, *, is_template: bool = False, revision: int | None = None
    ) -> None: ...

    def start(self, uuid: str) -> None: ...

    def shutdown(self, uuid: str, *, force: bool = False) -> None: ...

    def create_snapshot(self, uuid: str, name: str, description: str | None = None) -> None: ...

    def delete_snapshot(self, uuid: str, name: str) -> None: ...

    def power_off(self, uuid: str, *, grace_s: float = 60.0) -> str:
        """ACPI shutdown, destroy after ``grace_s``: "already-off", "shutdown" or "forced"."""
        ...

    def set_autostart(self, uuid: str, enabled: bool) -> None: ...

    def domain_xml(self, uuid: str) -> bytes:
        """The persistent (inactive) definition, as libvirt gives it: what an archive keeps."""
        ...

    def delete_vm(self, uuid: str, *, delete_storage: bool = True) -> list[str] | None:
        """Destroy, delete its pool volumes, undefine; the deleted paths, None if no such VM."""
        ...

    def volumes_to_delete(self, uuid: str) -> list[str]:
        """The pool volumes ``delete_vm`` would delete (refused if another VM here needs one)."""
        ...

    def paths_in_use(self, exclude: str = "") -> dict[str, set[str]]:
        """Path -> names of the VMs here (but ``exclude``) using it as a disk or backing file."""
        ...

    def watch_lifecycle(self, callback: Callable[[str, str], None]) -> bool: ...

    def is_alive(self) -> bool: ...

    # -- the live HA manager (corral.hypervisor.libvirt.failover) ----------------
    def keepalive(self, interval_s: int, count: int) -> bool: ...

    def ping(self) -> None: ...

    def run_state(self, uuid: str) -> str:
        """ "running", "stopped" (defined, not running) or "absent" (not defined here)."""
        ...

    def start_definition(self, xml: bytes) -> None: ...

    def undefine_stopped(self, uuid: str) -> bool:
        """Undefine VM ``uuid`` here if defined and not running; True when it was."""
        ...

    # -- maintenance (corral.hypervisor.libvirt.migration) -----------------------
    def migrate_live(
        self,
        uuid: str,
        dest_uri: str,
        *,
        migration_uri: str | None = None,
        unsafe: bool = False,
        bandwidth_mib_s: int | None = None,
    ) -> None: ...

    def abort_job(self, uuid: str) -> bool:
        """Cancel VM ``uuid``'s job (a migration); False when none was running."""
        ...

    def close(self) -> None: ...
