"""Kept for existing importers: the clock lives in :mod:`corral.domain.clock`."""

from corral.domain.clock import (
    Clock,
    ManualClock,
    SystemClock,
)

__all__ = [
    "Clock",
    "ManualClock",
    "SystemClock",
]
