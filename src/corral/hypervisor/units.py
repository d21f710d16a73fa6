"""What a deployed blueprint (a unit) needs of a host beyond provisioning: its own isolated
network, and the pristine snapshot of each of its VMs that a redeploy goes back to."""

from __future__ import annotations

from typing import Protocol

#: The snapshot each VM of a unit gets right after it was made, before its first boot.
PRISTINE = "corral-pristine"


class UnitHost(Protocol):
    """The unit steps of one host (each one may be repeated: a second call changes nothing)."""

    def ensure_isolated_network(self, name: str) -> bool:
        """Define and start a network with no forward (its guests reach only each other);
        True when it was created now."""
        ...

    def remove_network(self, name: str) -> bool:
        """Stop and undefine a network; False when it was not there."""
        ...

    def network_names(self) -> set[str]: ...

    def take_pristine(self, uuid: str) -> bool:
        """An internal snapshot of the VM, shut off (its read-only disks left out); True
        when it was taken now, False when the VM had one already."""
        ...

    def revert_pristine(self, uuid: str) -> None:
        """Turn the VM off (if it runs) and revert it to its pristine snapshot."""
        ...

    def run_state(self, uuid: str) -> str: ...

    def start(self, uuid: str) -> None: ...

    def power_off(self, uuid: str, *, grace_s: float = 60.0) -> str: ...

    def delete_vm(self, uuid: str, *, delete_storage: bool = True) -> list[str] | None: ...

    def delete_volume(self, pool: str, name: str) -> bool: ...


__all__ = ["PRISTINE", "UnitHost"]
