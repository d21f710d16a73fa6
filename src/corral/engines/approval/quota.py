"""Quota check: one reason per exceeded limit, and only on the dimensions a request increases.

A department's usage is what it already runs plus what is approved and not yet provisioned.
A request that adds nothing to a dimension (a lease extension adds no memory) is never refused
for that dimension, even when the department is already over it (a quota lowered later).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from corral.domain.requests import QuotaDimension, Size

EPS = 1e-9
_UNITS = {
    QuotaDimension.vcpus: "vCPUs",
    QuotaDimension.memory_mib: "MiB of memory",
    QuotaDimension.storage_gb: "GB of storage",
    QuotaDimension.vms: "VMs",
    QuotaDimension.monthly_cost: "per month",
}


@dataclass(frozen=True, slots=True)
class Amounts:
    """An amount in every quota dimension (usage, or what a request adds)."""

    vcpus: float = 0.0
    memory_mib: float = 0.0
    storage_gb: float = 0.0
    vms: float = 0.0
    monthly_cost: float = 0.0

    def __add__(self, other: Amounts) -> Amounts:
        return Amounts(*(self.get(d) + other.get(d) for d in QuotaDimension))

    def get(self, dimension: QuotaDimension) -> float:
        return float(getattr(self, dimension.value))

    @classmethod
    def of_request(cls, count: int, size: Size, monthly_cost: float) -> Amounts:
        """What ``count`` new VMs of ``size`` add, costing ``monthly_cost`` in all."""
        return cls(
            vcpus=count * size.vcpus,
            memory_mib=count * size.memory_mib,
            storage_gb=count * size.disk_gb,
            vms=count,
            monthly_cost=monthly_cost,
        )


@dataclass(frozen=True, slots=True)
class Limits:
    """A department's quota; None in a dimension means no limit there."""

    vcpus: float | None = None
    memory_mib: float | None = None
    storage_gb: float | None = None
    vms: float | None = None
    monthly_cost: float | None = None

    def get(self, dimension: QuotaDimension) -> float | None:
        value = getattr(self, dimension.value)
        return None if value is None else float(value)

    @property
    def unlimited(self) -> bool:
        return all(getattr(self, f.name) is None for f in fields(self))


@dataclass(frozen=True, slots=True)
class QuotaBreach:
    """One exceeded limit: the request would bring ``used`` + ``requested`` over ``limit``."""

    dimension: QuotaDimension
    limit: float
    used: float
    requested: float

    def text(self, currency: str = "") -> str:
        unit = f"{currency} per month" if self.dimension is QuotaDimension.monthly_cost else ""
        unit = unit or _UNITS[self.dimension]
        return (
            f"quota {self.dimension.value}: {_num(self.used)} used + {_num(self.requested)} "
            f"requested exceeds the limit of {_num(self.limit)} {unit}"
        )


def check_quota(limits: Limits, used: Amounts, requested: Amounts) -> tuple[QuotaBreach, ...]:
    """Every dimension the request increases and would bring over its limit, in enum order."""
    breaches = []
    for dim in QuotaDimension:
        limit, add = limits.get(dim), requested.get(dim)
        if limit is None or add <= EPS:
            continue
        if used.get(dim) + add > limit + EPS:
            breaches.append(QuotaBreach(dim, limit, used.get(dim), add))
    return tuple(breaches)


def _num(value: float) -> str:
    return f"{value:,.2f}".rstrip("0").rstrip(".") if value % 1 else f"{int(value):,}"
