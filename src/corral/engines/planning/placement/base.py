"""What a placement filter and a placement weigher are (Nova's split, STYLE.md).

A filter is a hard constraint: for one VM it returns a pass/fail mask over all
hosts and can say, in one sentence, why a given host failed. ``resolvable``
tells whether moving or freeing other VMs could ever make the host pass
(capacity, anti-affinity) or not (CPU features, core count) — the difference
between "unschedulable, freeing capacity may help" and "unschedulable".

A weigher is a preference: a raw value per candidate host, normalised to 0..1
over the candidates and multiplied by ``multiplier`` (its sign chooses e.g.
spread or stack).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

from corral.engines.planning.model import VM
from corral.engines.planning.state import BoolArray, ClusterState, FloatArray


class HostFilter(ABC):
    name: ClassVar[str]
    description: ClassVar[str]
    #: Parameter name -> one-line description (with its default).
    parameters: ClassVar[dict[str, str]] = {}
    resolvable: ClassVar[bool] = False

    @abstractmethod
    def passes(self, state: ClusterState, vm: VM) -> BoolArray:
        """Mask over all hosts: True where ``vm`` may go."""

    @abstractmethod
    def explain(self, state: ClusterState, vm: VM, host: int) -> str:
        """Why ``host`` failed this filter for ``vm``, in one sentence."""

    def passes_when_freed(self, state: ClusterState, vm: VM) -> BoolArray:
        """Hosts that could pass if other VMs were moved away (only for resolvable filters)."""
        return self.passes(state, vm)


class HostWeigher(ABC):
    name: ClassVar[str]
    description: ClassVar[str]
    parameters: ClassVar[dict[str, str]] = {}

    def __init__(self, multiplier: float = 1.0) -> None:
        self.multiplier = multiplier

    @abstractmethod
    def raw(self, state: ClusterState, vm: VM, hosts: FloatArray) -> FloatArray:
        """Raw preference for each candidate host index in ``hosts`` (higher is better)."""
