"""The stored failover plan: for each host, where each of its protected VMs restarts.

Computed and verified before any failure by the planning engine's restart
simulation (one failed host at a time); the manager follows it and only asks the
placement engine again when a planned target is gone or full.
"""

from __future__ import annotations

from collections.abc import Mapping

from corral.engines.planning.ha.failover import FailoverModel
from corral.engines.planning.model import Fleet

#: failed host -> {VM -> target host}
FailoverPlan = Mapping[str, Mapping[str, str]]


def plans_by_host(fleet: Fleet) -> dict[str, dict[str, str]]:
    """The single-host failover plan of every host of ``fleet``."""
    model = FailoverModel.build(fleet)
    return {name: dict(model.single(i).result.plan) for i, name in enumerate(model.host_names)}
