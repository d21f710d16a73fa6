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

__all__ = [
    "DEFAULT_CONFIG",
    "Cause",
    "Diagnosis",
    "DiagnosisConfig",
    "Evidence",
    "Finding",
    "Series",
    "diagnose",
    "headline",
]
