"""The Hypervisor interface over libvirt-python, put together from its parts."""

from __future__ import annotations

from corral.hypervisor.libvirt.actions import Actions
from corral.hypervisor.libvirt.failover import Failover
from corral.hypervisor.libvirt.migration import Migration
from corral.hypervisor.libvirt.provisioning import Provisioning
from corral.hypervisor.libvirt.reading import Reading
from corral.hypervisor.libvirt.storage import Storage
from corral.hypervisor.libvirt.units import Units


class LibvirtHypervisor(Reading, Actions, Storage, Provisioning, Failover, Migration, Units):
    """A long-lived libvirt connection to one host."""
