"""The calls provisioning makes on one host: volumes through the storage API, a definition.

Each call either does all of its work or none of it (a volume whose upload failed is
deleted by the same call), so the service's rollback only ever has to undo whole steps.
:class:`corral.hypervisor.libvirt.LibvirtHypervisor` implements it; the service reaches it
through :class:`corral.hypervisor.bounded.BoundedHypervisor`, so a host that stops
answering costs the host timeout, never a hung request.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class VolumeInfo:
    """A storage volume as the pool reports it."""

    pool: str
    name: str
    path: str
    capacity_bytes: int
    format: str | None


@dataclass(frozen=True, slots=True)
class Upload:
    """A volume written from bytes; ``written`` is False when the driver cannot upload
    (libvirt's test driver), in which case the volume exists, sized, but empty."""

    volume: VolumeInfo
    written: bool


class Provisioner(Protocol):
    """Provisioning steps on one host."""

    def volume_info(self, pool: str, name: str) -> VolumeInfo | None:
        """The volume, or None when the pool has no volume of that name."""
        ...

    def clone_volume(
        self, pool: str, name: str, base: VolumeInfo, capacity_bytes: int, *, linked: bool
    ) -> VolumeInfo:
        """A new qcow2 volume: an overlay on ``base`` (linked) or a full copy of it."""
        ...

    def upload_volume(self, pool: str, name: str, data: bytes) -> Upload:
        """A new raw volume holding ``data``."""
        ...

    def delete_volume(self, pool: str, name: str) -> bool:
        """Delete a volume; False when it was already gone."""
        ...

    def domain_named(self, name: str) -> str | None:
        """The UUID of the domain of that name on this host, if any."""
        ...

    def define_domain(self, xml: str) -> str:
        """Define (persistently) the domain ``xml`` describes; its UUID."""
        ...

    def start(self, uuid: str) -> None: ...

    def delete_vm(self, uuid: str, *, delete_storage: bool = True) -> list[str] | None: ...


__all__ = ["Provisioner", "Upload", "VolumeInfo"]
