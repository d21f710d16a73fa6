"""The one place consolidation strategies are registered."""

from __future__ import annotations

from corral.engines.planning.consolidation.strategies.base import ConsolidationStrategy
from corral.engines.planning.consolidation.strategies.cpsat import CpSatStrategy
from corral.engines.planning.consolidation.strategies.drain import DrainStrategy
from corral.engines.planning.consolidation.strategies.repack import RepackStrategy

STRATEGIES: dict[str, type[ConsolidationStrategy]] = {
    cls.name: cls for cls in (CpSatStrategy, DrainStrategy, RepackStrategy)
}
