"""A blueprint: several tiers of VMs requested, approved, costed and provisioned as one unit.

A tier is a template, how many VMs of it, their size (the template's unless overridden), its
place in the provision order and how long to wait after the tier before it has been made (a
database up before the application that needs it). A request for a blueprint books its
quota and capacity for every VM at once; its VMs are made tier after tier, and a tier that
fails undoes the tiers made before it (seeds: LabManager's multi-tier labs, ManageIQ's
service bundles with provision order and start delays).
"""

from __future__ import annotations

from dataclasses import dataclass

from corral.domain.provision import check_name
from corral.domain.requests import Size
from corral.domain.text import check_text
from corral.errors import ValidationError

MAX_TIERS = 16
MAX_TIER_COUNT = 50
MAX_DELAY_S = 3600.0


@dataclass(frozen=True, slots=True)
class Tier:
    """One tier of a blueprint; ``None`` sizes are the template's (disk: its image's)."""

    name: str
    template: str
    count: int = 1
    vcpus: int | None = None
    memory_mib: int | None = None
    disk_gb: float | None = None
    order: int = 0  # provision order: lower first; equal orders keep the blueprint's order
    start_delay_s: float = 0.0  # wait this long after the previous tier was made


@dataclass(frozen=True, slots=True)
class Blueprint:
    name: str
    tiers: tuple[Tier, ...]
    description: str | None = None

    def in_order(self) -> tuple[Tier, ...]:
        """The tiers in provision order."""
        ranked = sorted(enumerate(self.tiers), key=lambda it: (it[1].order, it[0]))
        return tuple(t for _, t in ranked)


@dataclass(frozen=True, slots=True)
class Part:
    """A tier as requested: concrete size, in provision order (a plain template request is
    one part with no tier name)."""

    tier: str
    template: str
    count: int
    size: Size
    start_delay_s: float = 0.0


def check_blueprint(b: Blueprint) -> Blueprint:
    """Refuse a blueprint that cannot be requested, naming the tier and the field."""
    check_name(b.name, "the blueprint name")
    if b.description is not None:
        check_text(b.description, "the description", multiline=True)
    if not 1 <= len(b.tiers) <= MAX_TIERS:
        raise ValidationError(f"a blueprint has 1 to {MAX_TIERS} tiers.")
    seen: set[str] = set()
    for t in b.tiers:
        check_name(t.name, "the tier name")
        if t.name in seen:
            raise ValidationError(f"tier {t.name} appears twice; tier names are unique.")
        seen.add(t.name)
        check_name(t.template, f"tier {t.name}'s template")
        if not 1 <= t.count <= MAX_TIER_COUNT:
            raise ValidationError(f"tier {t.name}: count is 1 to {MAX_TIER_COUNT}.")
        if t.vcpus is not None and t.vcpus < 1:
            raise ValidationError(f"tier {t.name}: at least 1 vCPU.")
        if t.memory_mib is not None and t.memory_mib < 64:
            raise ValidationError(f"tier {t.name}: at least 64 MiB of memory.")
        if t.disk_gb is not None and t.disk_gb < 0:
            raise ValidationError(f"tier {t.name}: the disk is 0 GB or more.")
        if not 0 <= t.start_delay_s <= MAX_DELAY_S:
            raise ValidationError(f"tier {t.name}: the start delay is 0 to {MAX_DELAY_S:g} s.")
    return b


__all__ = ["Blueprint", "Part", "Tier", "check_blueprint"]
