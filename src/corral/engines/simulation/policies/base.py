"""What a consolidation policy is: a named plugin with described parameters.

A policy gets a :class:`PlanningView` twice: once to place every VM at creation (each VM
requesting its full MIPS, RAM binding) and then at every consolidation step, where it
returns the migrations to start as ``(vm, target_host)`` pairs.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

from corral.engines.simulation.model import IntArray
from corral.engines.simulation.view import PlanningView

Migration = tuple[int, int]


@dataclass(frozen=True)
class Parameter:
    name: str
    default: float
    description: str


class ConsolidationPolicy(ABC):
    """Base of every policy; subclasses set ``family``, ``summary`` and ``parameters``."""

    family: ClassVar[str]
    summary: ClassVar[str]
    parameters: ClassVar[tuple[Parameter, ...]] = ()

    @property
    def name(self) -> str:
        """The policy's CLI name, e.g. ``lr-mmt-1.2``."""
        return self.family

    @abstractmethod
    def initial_placement(self, view: PlanningView) -> IntArray:
        """Host for each VM at creation (-1 when it fits nowhere)."""

    @abstractmethod
    def optimize(self, view: PlanningView) -> list[Migration]:
        """Migrations to start now."""
