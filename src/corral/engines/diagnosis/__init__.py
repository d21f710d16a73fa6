"""Why a VM is slow or busy, named from hypervisor data (a pure engine: series in, findings out)."""

from corral.engines.diagnosis.causes import (
    DEFAULT_CONFIG,
    Cause,
    Diagnosis,
    DiagnosisConfig,
    Evidence,
    Finding,
    Series,
    diagnose,
    headline,
)
from corral.engines.diagnosis.fleet import (
    DEFAULT_FLEET_CONFIG,
    FleetConfig,
    FleetGroup,
    FleetSummary,
    summarize,
)

__all__ = [
    "DEFAULT_CONFIG",
    "DEFAULT_FLEET_CONFIG",
    "Cause",
    "Diagnosis",
    "DiagnosisConfig",
    "Evidence",
    "Finding",
    "FleetConfig",
    "FleetGroup",
    "FleetSummary",
    "Series",
    "diagnose",
    "headline",
    "summarize",
]
