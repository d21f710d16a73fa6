"""Where the libvirt adapter used to live; it is now the package corral.hypervisor.libvirt."""

from corral.hypervisor.libvirt import (
    CORRAL_TD_NS,
    NODE_FILE_FAILED,
    POWER_OFF_POLL_S,
    TEST_NS,
    Credentials,
    LibvirtHypervisor,
    connect,
    quiet_libvirt,
)

__all__ = [
    "CORRAL_TD_NS",
    "NODE_FILE_FAILED",
    "POWER_OFF_POLL_S",
    "TEST_NS",
    "Credentials",
    "LibvirtHypervisor",
    "connect",
    "quiet_libvirt",
]
