"""Consolidation policies, registered in one place (``REGISTRY``)."""

from __future__ import annotations

from corral.engines.simulation.policies.base import ConsolidationPolicy, Migration, Parameter
from corral.engines.simulation.policies.lr_mmt import LrMmt
from corral.engines.simulation.policies.thr_mmt import ThrMmt
from corral.errors import NotFoundError, ValidationError

REGISTRY: dict[str, type[ConsolidationPolicy]] = {
    ThrMmt.family: ThrMmt,
    LrMmt.family: LrMmt,
}


def make_policy(name: str) -> ConsolidationPolicy:
    """Build a policy from its CLI name: a family, optionally followed by ``-<first parameter>``
    (``lr-mmt-1.2``, ``thr-mmt-0.8``, ``corral``)."""
    key = name.strip().lower()
    if key in REGISTRY:
        return REGISTRY[key]()
    family, _, value = key.rpartition("-")
    if family not in REGISTRY:
        known = ", ".join(sorted(REGISTRY))
        raise NotFoundError(f"unknown policy {name!r}; choose one of {known} (e.g. lr-mmt-1.2).")
    cls = REGISTRY[family]
    if not cls.parameters:
        raise ValidationError(f"policy {family} takes no parameter; use {family!r}.")
    try:
        number = float(value)
    except ValueError as exc:
        raise ValidationError(f"policy {name!r}: {value!r} is not a number.") from exc
    return cls(number)  # type: ignore[call-arg]


def describe_policies() -> list[dict[str, object]]:
    """One row per policy family with its parameters and defaults."""
    return [
        {
            "policy": family,
            "summary": cls.summary,
            "parameters": {p.name: p.default for p in cls.parameters},
            "parameter_help": {p.name: p.description for p in cls.parameters},
        }
        for family, cls in sorted(REGISTRY.items())
    ]


__all__ = [
    "REGISTRY",
    "ConsolidationPolicy",
    "Migration",
    "Parameter",
    "describe_policies",
    "make_policy",
]
