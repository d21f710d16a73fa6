"""The one place HA admission-control policies are registered."""

from __future__ import annotations

from typing import Any

from corral.engines.planning.ha.base import AdmissionPolicy
from corral.engines.planning.ha.exact import ExactPolicy
from corral.engines.planning.ha.failover_hosts import FailoverHostsPolicy
from corral.engines.planning.ha.percentage import PercentagePolicy
from corral.engines.planning.ha.slots import SlotPolicy
from corral.errors import ValidationError

POLICIES: dict[str, type[AdmissionPolicy]] = {
    cls.name: cls for cls in (ExactPolicy, SlotPolicy, PercentagePolicy, FailoverHostsPolicy)
}


def make_policy(name: str, **params: Any) -> AdmissionPolicy:
    cls = POLICIES.get(name)
    if cls is None:
        raise ValidationError(f"HA policy {name!r} is unknown; use one of {', '.join(POLICIES)}.")
    return cls(**{k: v for k, v in params.items() if v is not None})
