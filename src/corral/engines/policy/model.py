"""Policies as data, and the one check that runs on a request and on each inventory VM.

A policy file (YAML) says::

    required_metadata: [owner, department, purpose, environment]
    sizes:                        # allowed sizes per environment (an absent one: no limit)
      dev:  {max_vcpus: 4, max_memory_mib: 8192, max_disk_gb: 100}
    prod_protection: [gold, silver]   # tiers a prod VM may have (none set: a violation)
    allowed_networks: [lan, dmz]
    max_lease_days: 90

Each violation names its rule (``policy.required_metadata.owner``, ``policy.size.dev``,
``policy.prod_protection``, ``policy.network``, ``policy.max_lease``) and its evidence (the
value found and the limit), so a blocked requester and a drift report read the same words.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from corral.errors import ValidationError

METADATA = ("owner", "department", "purpose", "project", "environment", "expires_on")
PROD = "prod"


@dataclass(frozen=True, slots=True)
class SizeLimit:
    max_vcpus: int | None = None
    max_memory_mib: int | None = None
    max_disk_gb: float | None = None


@dataclass(frozen=True, slots=True)
class Policy:
    required_metadata: tuple[str, ...] = ()
    sizes: dict[str, SizeLimit] = field(default_factory=dict)
    prod_protection: tuple[str, ...] = ()
    allowed_networks: tuple[str, ...] = ()
    max_lease_days: int | None = None


@dataclass(frozen=True, slots=True)
class Facts:
    """What a rule looks at: a request (``lease_days`` set) or an inventory VM
    (``expires_on`` and ``today`` set). ``None`` (a metadata field: absent) means not known
    here, and its rule is skipped: a request carries no project and no protection tier."""

    name: str
    metadata: dict[str, str | None]
    environment: str | None
    vcpus: int
    memory_mib: int
    disk_gb: float | None = None
    protection_tier: str | None = None
    networks: tuple[str, ...] | None = None
    lease_days: int | None = None
    expires_on: date | None = None
    today: date | None = None


@dataclass(frozen=True, slots=True)
class Violation:
    rule: str
    subject: str
    message: str
    evidence: dict[str, str]


def check(policy: Policy, f: Facts, *, protection_known: bool = True) -> list[Violation]:
    """Every rule ``f`` breaks, in the policy file's order."""
    out = _metadata(policy, f) + _size(policy, f)
    if protection_known:
        out += _protection(policy, f)
    return out + _networks(policy, f) + _lease(policy, f)


def _metadata(policy: Policy, f: Facts) -> list[Violation]:
    return [
        Violation(
            f"policy.required_metadata.{key}",
            f.name,
            f"{f.name} has no {key}; the policy requires one.",
            {key: ""},
        )
        for key in policy.required_metadata
        if key in f.metadata and not (f.metadata[key] or "").strip()
    ]


def _protection(policy: Policy, f: Facts) -> list[Violation]:
    tier = f.protection_tier or ""
    if (f.environment or "") != PROD or not policy.prod_protection:
        return []
    if tier in policy.prod_protection:
        return []
    allowed = ", ".join(policy.prod_protection)
    return [
        Violation(
            "policy.prod_protection",
            f.name,
            f"{f.name} is prod with protection tier {tier or 'none'}; prod needs one of {allowed}.",
            {"protection_tier": tier, "allowed": allowed},
        )
    ]


def _networks(policy: Policy, f: Facts) -> list[Violation]:
    if not policy.allowed_networks or f.networks is None:
        return []
    allowed = ", ".join(policy.allowed_networks)
    return [
        Violation(
            "policy.network",
            f.name,
            f"{f.name} is on network {net}, which the policy does not allow ({allowed}).",
            {"network": net, "allowed": allowed},
        )
        for net in f.networks
        if net not in policy.allowed_networks
    ]


def _size(policy: Policy, f: Facts) -> list[Violation]:
    limit = policy.sizes.get(f.environment or "")
    if limit is None:
        return []
    over = []
    if limit.max_vcpus is not None and f.vcpus > limit.max_vcpus:
        over.append(("vcpus", str(f.vcpus), str(limit.max_vcpus)))
    if limit.max_memory_mib is not None and f.memory_mib > limit.max_memory_mib:
        over.append(("memory_mib", str(f.memory_mib), str(limit.max_memory_mib)))
    if limit.max_disk_gb is not None and f.disk_gb is not None and f.disk_gb > limit.max_disk_gb:
        over.append(("disk_gb", f"{f.disk_gb:g}", f"{limit.max_disk_gb:g}"))
    return [
        Violation(
            f"policy.size.{f.environment}",
            f.name,
            f"{f.name} has {what} {value}; {f.environment} allows at most {most}.",
            {what: value, "max": most},
        )
        for what, value, most in over
    ]


def _lease(policy: Policy, f: Facts) -> list[Violation]:
    most = policy.max_lease_days
    if most is None:
        return []
    days = f.lease_days
    if days is None and f.expires_on is not None and f.today is not None:
        days = (f.expires_on - f.today).days
    if days is None or days <= most:
        return []
    return [
        Violation(
            "policy.max_lease",
            f.name,
            f"{f.name}'s lease is {days} days; the policy allows at most {most}.",
            {"lease_days": str(days), "max": str(most)},
        )
    ]


def policy_from_mapping(data: object, source: str) -> Policy:
    """A policy from its YAML form, every field checked (an unknown one is refused)."""
    if data is None:
        return Policy()
    if not isinstance(data, dict):
        raise ValidationError(f"{source}: a policy is a mapping of rules.")
    known = {"required_metadata", "sizes", "prod_protection", "allowed_networks", "max_lease_days"}
    unknown = sorted(set(map(str, data)) - known)
    if unknown:
        raise ValidationError(f"{source}: unknown policy rule {unknown[0]!r}.")
    required = _names(data.get("required_metadata"), f"{source}: required_metadata")
    bad = sorted(set(required) - set(METADATA))
    if bad:
        raise ValidationError(
            f"{source}: {bad[0]!r} is not a metadata field ({', '.join(METADATA)})."
        )
    lease = data.get("max_lease_days")
    if lease is not None and (isinstance(lease, bool) or not isinstance(lease, int) or lease < 1):
        raise ValidationError(f"{source}: max_lease_days is a whole number of days, 1 or more.")
    return Policy(
        required_metadata=required,
        sizes=_sizes(data.get("sizes"), source),
        prod_protection=_names(data.get("prod_protection"), f"{source}: prod_protection"),
        allowed_networks=_names(data.get("allowed_networks"), f"{source}: allowed_networks"),
        max_lease_days=lease,
    )


def _names(value: object, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ValidationError(f"{where} is a list of names.")
    return tuple(value)


def _sizes(value: object, source: str) -> dict[str, SizeLimit]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValidationError(f"{source}: sizes maps each environment to its limits.")
    out = {}
    for env, lim in value.items():
        if not isinstance(lim, dict) or set(map(str, lim)) - {
            "max_vcpus",
            "max_memory_mib",
            "max_disk_gb",
        }:
            raise ValidationError(
                f"{source}: sizes.{env} is a mapping of max_vcpus, max_memory_mib, max_disk_gb."
            )
        for key, v in lim.items():
            if isinstance(v, bool) or not isinstance(v, int | float) or v < 0:
                raise ValidationError(f"{source}: sizes.{env}.{key} is a number, 0 or more.")
        out[str(env)] = SizeLimit(
            lim.get("max_vcpus"), lim.get("max_memory_mib"), lim.get("max_disk_gb")
        )
    return out


__all__ = ["Facts", "Policy", "SizeLimit", "Violation", "check", "policy_from_mapping"]
