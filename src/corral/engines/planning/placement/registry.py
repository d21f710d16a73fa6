"""The one place placement filters and weighers are registered."""

from __future__ import annotations

from corral.engines.planning.placement.base import HostFilter, HostWeigher
from corral.engines.planning.placement.filters.affinity import AffinityFilter
from corral.engines.planning.placement.filters.anti_affinity import AntiAffinityFilter
from corral.engines.planning.placement.filters.capacity import CapacityFilter
from corral.engines.planning.placement.filters.cores import CoresFilter
from corral.engines.planning.placement.filters.cpu_compat import CpuCompatibilityFilter
from corral.engines.planning.placement.filters.ha_reserve import HAReserveFilter
from corral.engines.planning.placement.filters.image import ImageFilter
from corral.engines.planning.placement.weighers.balance import BalanceWeigher
from corral.engines.planning.placement.weighers.free_capacity import FreeCapacityWeigher
from corral.engines.planning.placement.weighers.peak_correlation import PeakCorrelationWeigher

FILTERS: dict[str, type[HostFilter]] = {
    cls.name: cls
    for cls in (
        CpuCompatibilityFilter,
        CoresFilter,
        AffinityFilter,
        AntiAffinityFilter,
        CapacityFilter,
        HAReserveFilter,
        ImageFilter,
    )
}

WEIGHERS: dict[str, type[HostWeigher]] = {
    cls.name: cls for cls in (FreeCapacityWeigher, BalanceWeigher, PeakCorrelationWeigher)
}


def default_filters(ha_failures: int | None = None) -> tuple[HostFilter, ...]:
    """Every filter, cheapest-to-explain first; ``ha_failures`` overrides settings' K."""
    return (
        CpuCompatibilityFilter(),
        CoresFilter(),
        AffinityFilter(),
        AntiAffinityFilter(),
        CapacityFilter(),
        HAReserveFilter(ha_failures),
    )


def default_weighers(strategy: str = "spread") -> tuple[HostWeigher, ...]:
    """``spread`` keeps load low everywhere; ``stack`` fills hosts to keep fewer active."""
    sign = {"spread": 1.0, "stack": -1.0}.get(strategy)
    if sign is None:
        from corral.errors import ValidationError

        raise ValidationError(f"Placement strategy {strategy!r} is unknown; use spread or stack.")
    return (
        FreeCapacityWeigher(sign),
        BalanceWeigher(0.5),
        PeakCorrelationWeigher(2.0),  # the seeds insist: peaks that coincide do not share a host
    )
