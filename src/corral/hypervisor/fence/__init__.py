"""Fencing: proving a host is powered off before its VMs run anywhere else.

Fence methods are plugins (:class:`~.base.FenceMethod`, one per file, registered in
:mod:`.registry`). The first speaks the standard fence-agent protocol, so every
agent of Debian's ``fence-agents`` package (fence_ipmilan, fence_redfish,
fence_virsh, ...) works unchanged.
"""

from corral.hypervisor.fence.agent import FenceAgent
from corral.hypervisor.fence.base import FenceMethod, FenceOutcome, FenceResult
from corral.hypervisor.fence.registry import FENCE_METHODS, make_fence_method

__all__ = [
    "FENCE_METHODS",
    "FenceAgent",
    "FenceMethod",
    "FenceOutcome",
    "FenceResult",
    "make_fence_method",
]
