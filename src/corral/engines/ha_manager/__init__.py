"""The HA manager's logic: detect a dead host, fence it, restart its VMs by the plan.

A deterministic state machine over plain data (:mod:`.state`), driven through one
narrow :class:`~.env.Environment` (clock, probes, fencing, VM starts, the fleet), so
the same :class:`~.manager.Manager` runs against real hosts and against the
simulated environment of :mod:`.sim`.
"""

from corral.engines.ha_manager.env import Environment, FenceStatus, Probe, VMStatus
from corral.engines.ha_manager.events import Event
from corral.engines.ha_manager.manager import Manager
from corral.engines.ha_manager.plan import FailoverPlan, plans_by_host
from corral.engines.ha_manager.state import (
    HostRecord,
    HostState,
    ManagerConfig,
    ManagerState,
    Policy,
    VMRecord,
    VMState,
)

__all__ = [
    "Environment",
    "Event",
    "FailoverPlan",
    "FenceStatus",
    "HostRecord",
    "HostState",
    "Manager",
    "ManagerConfig",
    "ManagerState",
    "Policy",
    "Probe",
    "VMRecord",
    "VMState",
    "VMStatus",
    "plans_by_host",
]
