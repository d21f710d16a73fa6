"""The Hypervisor interface over libvirt-python.

The same code serves libvirt's test driver (node files: Corral's embedded default) and
real libvirtd hosts. One module per job: opening connections (connection), reading a
host (reading), lifecycle actions (actions), deletion and its storage guards (storage)
and the test driver's node-file persistence (nodefile), over a shared core (core).
"""

from corral.hypervisor.libvirt.actions import POWER_OFF_POLL_S
from corral.hypervisor.libvirt.connection import (
    NODE_FILE_FAILED,
    Credentials,
    connect,
    quiet_libvirt,
)
from corral.hypervisor.libvirt.hypervisor import LibvirtHypervisor
from corral.hypervisor.libvirt.nodefile import CORRAL_TD_NS, TEST_NS

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
