"""Consolidation policies, registered in one place (``REGISTRY``)."""

from __future__ import annotations

from corral.engines.simulation.policies.base import ConsolidationPolicy, Migration, Parameter
from corral.engines.simulation.policies.corral import CorralPolicy
from corral.engines.simulation.policies.iqr_mmt import IqrMmt
from corral.engines.simulation.policies.lr_mmt import LrMmt
from corral.engines.simulation.policies.mad_mmt import MadMmt
from corral.engines.simulation.policies.thr_mmt import ThrMmt
from corral.errors import NotFoundError, ValidationError

REGISTRY: dict[str, type[ConsolidationPolicy]] = {
    ThrMmt.family: ThrMmt,
    LrMmt.family: LrMmt,
    IqrMmt.family: IqrMmt,
    MadMmt.family: MadMmt,
    CorralPolicy.family: CorralPolicy,
}


def make_policy(name: str, overrides: dict[str, float] | None = None) -> ConsolidationPolicy:
    """Build a policy from its CLI name: a family, optionally followed by ``-<first parameter>``
    (``lr-mmt-1.2``, ``thr-mmt-0.8``, ``corral``); ``overrides`` set named parameters."""
    key = name.strip().lower()
    params: dict[str, float] = {}
    family = key
    if key not in REGISTRY:
        family, _, value = key.rpartition("-")
        if family not in REGISTRY:
            known = ", ".join(sorted(REGISTRY))
            raise NotFoundError(
                f"unknown policy {name!r}; choose one of {known} (e.g. lr-mmt-1.2)."
            )
        if not REGISTRY[family].parameters:
            raise ValidationError(f"policy {family} takes no parameter; use {family!r}.")
        try:
            params[REGISTRY[family].parameters[0].name] = float(value)
        except ValueError as exc:
            raise ValidationError(f"policy {name!r}: {value!r} is not a number.") from exc
    cls = REGISTRY[family]
    known_params = {p.name for p in cls.parameters}
    for param, number in (overrides or {}).items():
        if param not in known_params:
            raise ValidationError(
                f"policy {family} has no parameter {param!r}; "
                f"it has {', '.join(sorted(known_params))}."
            )
        params[param] = number
    return cls(**params)


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
