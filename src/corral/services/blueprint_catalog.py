"""The blueprint catalog as a person chooses from it: each blueprint's tiers at their
concrete sizes, how many VMs it makes and what it costs a month.

Why a service: the page that lists blueprints and the request workflow must price a
blueprint the same way, so the sizes are the ones a request resolves (``BlueprintService.
parts``: the template's where a tier does not say) and the price is the request service's
(``Prices.of_request``, the same rates a request's quote uses).
"""

from __future__ import annotations

from dataclasses import dataclass

from corral.domain.blueprint import Blueprint, Part
from corral.errors import ValidationError
from corral.services.blueprints import BlueprintService
from corral.services.quotas import Prices


@dataclass(frozen=True, slots=True)
class PricedTier:
    part: Part
    monthly_cost: float


@dataclass(frozen=True, slots=True)
class CatalogEntry:
    """One blueprint: its priced tiers in provision order, or why it cannot be requested now
    (``problem``: a tier's template left the catalog)."""

    blueprint: Blueprint
    tiers: tuple[PricedTier, ...]
    vms: int
    monthly_cost: float
    currency: str
    problem: str | None = None


def catalog(blueprints: BlueprintService, prices: Prices) -> list[CatalogEntry]:
    """Every blueprint by name, priced."""
    return [entry(blueprints, prices, b) for b in blueprints.all()]


def entry(blueprints: BlueprintService, prices: Prices, blueprint: Blueprint) -> CatalogEntry:
    try:
        parts = blueprints.parts(blueprint.name)
    except ValidationError as exc:
        return CatalogEntry(blueprint, (), 0, 0.0, prices.currency, exc.message)
    tiers = tuple(PricedTier(p, prices.of_request(p.count, p.size)) for p in parts)
    return CatalogEntry(
        blueprint=blueprint,
        tiers=tiers,
        vms=sum(p.count for p in parts),
        monthly_cost=sum(t.monthly_cost for t in tiers),
        currency=prices.currency,
    )


__all__ = ["CatalogEntry", "PricedTier", "catalog", "entry"]
