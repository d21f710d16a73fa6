"""What a consolidation strategy is: a name, described parameters, and a plan for a fleet.

Every strategy returns a :class:`ConsolidationPlan` that carries its own
efficacy figures (hosts before/after, migrations) beside a valid lower bound,
so strategies can be compared on the same fleet.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

from corral.engines.planning.consolidation.plan import ConsolidationPlan
from corral.engines.planning.model import Fleet


class ConsolidationStrategy(ABC):
    name: ClassVar[str]
    description: ClassVar[str]
    #: Parameter name -> one-line description (with its default).
    parameters: ClassVar[dict[str, str]] = {}

    @abstractmethod
    def plan(self, fleet: Fleet, failures: int) -> ConsolidationPlan:
        """Plan for ``fleet`` keeping an N+``failures`` reserve."""
