"""The one place sprawl detectors are registered."""

from __future__ import annotations

from collections.abc import Mapping

from corral.engines.sprawl.detectors.base import DetectionContext, Detector, Param
from corral.engines.sprawl.detectors.idle import IdleDetector
from corral.engines.sprawl.detectors.lease_expired import LeaseExpiredDetector
from corral.engines.sprawl.detectors.no_owner import NoOwnerDetector
from corral.engines.sprawl.detectors.no_purpose import NoPurposeDetector
from corral.engines.sprawl.detectors.orphaned_disks import OrphanedDiskDetector
from corral.engines.sprawl.detectors.powered_off import PoweredOffDetector
from corral.engines.sprawl.detectors.snapshot_sprawl import SnapshotSprawlDetector
from corral.errors import ConfigError

DETECTORS: Mapping[str, type[Detector]] = {
    cls.name: cls
    for cls in (
        PoweredOffDetector,
        IdleDetector,
        LeaseExpiredDetector,
        OrphanedDiskDetector,
        SnapshotSprawlDetector,
        NoOwnerDetector,
        NoPurposeDetector,
    )
}


def build_detectors(
    settings: Mapping[str, Mapping[str, float]] | None = None,
    enabled: tuple[str, ...] | None = None,
) -> list[Detector]:
    """Instantiate the enabled detectors (all by default) with their parameter overrides."""
    settings = settings or {}
    names = enabled if enabled is not None else tuple(DETECTORS)
    for name in (*names, *settings):
        if name not in DETECTORS:
            raise ConfigError(f"unknown detector '{name}'; known: {', '.join(DETECTORS)}.")
    return [DETECTORS[name](**settings.get(name, {})) for name in names]


__all__ = ["DETECTORS", "DetectionContext", "Detector", "Param", "build_detectors"]
