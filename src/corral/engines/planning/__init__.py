"""Planning engines: placement, consolidation, HA admission control, forecast and what-if.

Pure functions of plain data (a :class:`Fleet`); nothing here imports the API,
the CLI or the store. This module is the public surface.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from corral.engines.planning.consolidation.bounds import LowerBound, host_lower_bound
    from corral.engines.planning.consolidation.bulk import BulkResult, pack
    from corral.engines.planning.consolidation.engine import consolidate
    from corral.engines.planning.consolidation.evacuation import evacuate
    from corral.engines.planning.consolidation.migration import order_moves
    from corral.engines.planning.consolidation.plan import (
        ConsolidationPlan,
        EvacuationPlan,
        MigrationSchedule,
        Move,
    )
    from corral.engines.planning.consolidation.rebalance import RebalancePlan, rebalance
    from corral.engines.planning.forecast.exhaustion import Exhaustion, time_to_exhaustion
    from corral.engines.planning.forecast.history import forecast_fleet, load_history
    from corral.engines.planning.forecast.whatif import (
        AddVMs,
        RemoveHost,
        ReserveCapacity,
        WhatIfResult,
        what_if,
    )
    from corral.engines.planning.ha.base import AdmissionPolicy, HAReport
    from corral.engines.planning.ha.breakdate import ha_break_date
    from corral.engines.planning.ha.registry import POLICIES, make_policy
    from corral.engines.planning.model import (
        VM,
        Fleet,
        Host,
        PowerState,
        Protection,
        Settings,
        fleet_from_mapping,
        fleet_from_records,
        fleet_to_records,
        load_fleet,
    )
    from corral.engines.planning.placement.outcome import (
        Outcome,
        Placed,
        Unschedulable,
        UnschedulableFreeingWouldHelp,
    )
    from corral.engines.planning.placement.scheduler import PlacementResult, Scheduler, place
    from corral.engines.planning.state import ClusterState

#: Public name -> the module defining it. Imported on first use (PEP 562), so reading
#: a fleet (``corral.engines.planning.model``) does not load OR-Tools.
_EXPORTS: dict[str, str] = {
    "LowerBound": "corral.engines.planning.consolidation.bounds",
    "host_lower_bound": "corral.engines.planning.consolidation.bounds",
    "BulkResult": "corral.engines.planning.consolidation.bulk",
    "pack": "corral.engines.planning.consolidation.bulk",
    "consolidate": "corral.engines.planning.consolidation.engine",
    "evacuate": "corral.engines.planning.consolidation.evacuation",
    "order_moves": "corral.engines.planning.consolidation.migration",
    "ConsolidationPlan": "corral.engines.planning.consolidation.plan",
    "EvacuationPlan": "corral.engines.planning.consolidation.plan",
    "MigrationSchedule": "corral.engines.planning.consolidation.plan",
    "Move": "corral.engines.planning.consolidation.plan",
    "RebalancePlan": "corral.engines.planning.consolidation.rebalance",
    "rebalance": "corral.engines.planning.consolidation.rebalance",
    "Exhaustion": "corral.engines.planning.forecast.exhaustion",
    "time_to_exhaustion": "corral.engines.planning.forecast.exhaustion",
    "forecast_fleet": "corral.engines.planning.forecast.history",
    "load_history": "corral.engines.planning.forecast.history",
    "AddVMs": "corral.engines.planning.forecast.whatif",
    "RemoveHost": "corral.engines.planning.forecast.whatif",
    "ReserveCapacity": "corral.engines.planning.forecast.whatif",
    "WhatIfResult": "corral.engines.planning.forecast.whatif",
    "what_if": "corral.engines.planning.forecast.whatif",
    "AdmissionPolicy": "corral.engines.planning.ha.base",
    "HAReport": "corral.engines.planning.ha.base",
    "ha_break_date": "corral.engines.planning.ha.breakdate",
    "POLICIES": "corral.engines.planning.ha.registry",
    "make_policy": "corral.engines.planning.ha.registry",
    "VM": "corral.engines.planning.model",
    "Fleet": "corral.engines.planning.model",
    "Host": "corral.engines.planning.model",
    "PowerState": "corral.engines.planning.model",
    "Protection": "corral.engines.planning.model",
    "Settings": "corral.engines.planning.model",
    "fleet_from_mapping": "corral.engines.planning.model",
    "fleet_from_records": "corral.engines.planning.model",
    "fleet_to_records": "corral.engines.planning.model",
    "load_fleet": "corral.engines.planning.model",
    "Outcome": "corral.engines.planning.placement.outcome",
    "Placed": "corral.engines.planning.placement.outcome",
    "Unschedulable": "corral.engines.planning.placement.outcome",
    "UnschedulableFreeingWouldHelp": "corral.engines.planning.placement.outcome",
    "PlacementResult": "corral.engines.planning.placement.scheduler",
    "Scheduler": "corral.engines.planning.placement.scheduler",
    "place": "corral.engines.planning.placement.scheduler",
    "ClusterState": "corral.engines.planning.state",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


__all__ = [
    "POLICIES",
    "VM",
    "AddVMs",
    "AdmissionPolicy",
    "BulkResult",
    "ClusterState",
    "ConsolidationPlan",
    "EvacuationPlan",
    "Exhaustion",
    "Fleet",
    "HAReport",
    "Host",
    "LowerBound",
    "MigrationSchedule",
    "Move",
    "Outcome",
    "Placed",
    "PlacementResult",
    "PowerState",
    "Protection",
    "RebalancePlan",
    "RemoveHost",
    "ReserveCapacity",
    "Scheduler",
    "Settings",
    "Unschedulable",
    "UnschedulableFreeingWouldHelp",
    "WhatIfResult",
    "consolidate",
    "evacuate",
    "fleet_from_mapping",
    "fleet_from_records",
    "fleet_to_records",
    "forecast_fleet",
    "ha_break_date",
    "host_lower_bound",
    "load_fleet",
    "load_history",
    "make_policy",
    "order_moves",
    "pack",
    "place",
    "rebalance",
    "time_to_exhaustion",
    "what_if",
]
