"""Sprawl engines: detectors, dedupe, right-sizing, analysis — pure functions of plain data."""

from corral.engines.sprawl.analysis import CategoryTotal, SprawlAnalysis, analyse
from corral.engines.sprawl.dedupe import dedupe
from corral.engines.sprawl.detectors import DETECTORS, DetectionContext, Detector, build_detectors
from corral.engines.sprawl.model import (
    CATEGORY_RANK,
    GOVERNANCE,
    MEMORY_SOURCES,
    Category,
    Disk,
    Evidence,
    Finding,
    HostRecord,
    InsufficientData,
    MetricBatch,
    MetricWindow,
    Outcome,
    Snapshot,
    VMRecord,
    VMState,
    Volume,
    stack_windows,
)
from corral.engines.sprawl.rightsizing import (
    ResourceAdvice,
    RightSizeMode,
    RightSizing,
    RightSizingParams,
    right_size,
)

__all__ = [
    "CATEGORY_RANK",
    "DETECTORS",
    "GOVERNANCE",
    "MEMORY_SOURCES",
    "Category",
    "CategoryTotal",
    "DetectionContext",
    "Detector",
    "Disk",
    "Evidence",
    "Finding",
    "HostRecord",
    "InsufficientData",
    "MetricBatch",
    "MetricWindow",
    "Outcome",
    "ResourceAdvice",
    "RightSizeMode",
    "RightSizing",
    "RightSizingParams",
    "Snapshot",
    "SprawlAnalysis",
    "VMRecord",
    "VMState",
    "Volume",
    "analyse",
    "build_detectors",
    "dedupe",
    "right_size",
    "stack_windows",
]
