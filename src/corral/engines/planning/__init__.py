"""Planning engines: placement, consolidation, HA admission control, forecast and what-if.

Pure functions of plain data (a :class:`Fleet`); nothing here imports the API,
the CLI or the store. This module is the public surface.
"""

from __future__ import annotations

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
