"""The one place fence methods are registered."""

from __future__ import annotations

from typing import Any

from corral.errors import ConfigError
from corral.hypervisor.fence.agent import FenceAgent
from corral.hypervisor.fence.base import FenceMethod

FENCE_METHODS: dict[str, type[FenceMethod]] = {cls.name: cls for cls in (FenceAgent,)}


def make_fence_method(name: str, **params: Any) -> FenceMethod:
    """A fence method by its registered name; an unknown name is a ConfigError."""
    cls = FENCE_METHODS.get(name)
    if cls is None:
        known = ", ".join(sorted(FENCE_METHODS))
        raise ConfigError(f"Fence method {name!r} is unknown; use one of: {known}.")
    return cls(**params)
