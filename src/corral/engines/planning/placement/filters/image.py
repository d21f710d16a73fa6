"""A new VM goes only to a host that holds its template's image (a pool volume of that name).

Provisioning clones the template's base volume inside the host's own pool, so a host whose
pool of that name lacks the volume cannot take the VM, however much room it has. The caller
(the request provisioner) reads which hosts hold the image from the inventory and hands the
set in; ``None`` lets every host pass (a placement that does not care where images are).
"""

from __future__ import annotations

import numpy as np

from corral.engines.planning.model import VM
from corral.engines.planning.placement.base import HostFilter
from corral.engines.planning.state import BoolArray, ClusterState


class ImageFilter(HostFilter):
    name = "image"
    description = "The host's storage pool holds the VM's template image (given as host names)."
    parameters = {"hosts": "hosts holding the image (default: every host)", "image": "its name"}

    def __init__(self, hosts: frozenset[str] | None = None, image: str = "the image") -> None:
        self.hosts = hosts
        self.image = image

    def passes(self, state: ClusterState, vm: VM) -> BoolArray:
        if self.hosts is None:
            return np.ones(state.n_hosts, dtype=np.bool_)
        return np.array([h in self.hosts for h in state.host_names], dtype=np.bool_)

    def explain(self, state: ClusterState, vm: VM, host: int) -> str:
        return f"the host's pool does not hold {self.image}"
