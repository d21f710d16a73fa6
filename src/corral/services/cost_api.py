"""What the REST API needs of costing: the settings' cost model and the types its answers use.

The CLI loads the model per command (``corral.cli.context.cost_model``); the REST
API loads it once per app, here, so both price a VM with the same model. The
enums are re-exported so the interfaces import services only (tests/test_layering.py).
"""

from __future__ import annotations

from corral.config import Settings
from corral.engines.costing import (
    ComplianceStatus,
    CostModel,
    Dimension,
    LicenceScope,
    load_cost_model,
)
from corral.engines.sprawl.model import VMState

__all__ = [
    "ComplianceStatus",
    "CostModel",
    "Dimension",
    "LicenceScope",
    "VMState",
    "settings_cost_model",
]


def settings_cost_model(settings: Settings) -> CostModel:
    """The model of the settings (a YAML file) or the shipped, documented default."""
    return load_cost_model(settings.cost_model)
