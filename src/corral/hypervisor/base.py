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

    def set_metadata(self, uuid: str, meta: OwnerMeta, *, is_template: bool = False) -> None: ...

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

    def watch_lifecycle(self, callback: Callable[[str, str], None]) -> bool: ...

    def is_alive(self) -> bool: ...

    def close(self) -> None: ...
