"""The cost model the server prices with: the ``cost_model`` setting, else the shipped one.

The CLI loads it per command (``corral.cli.context.cost_model``); the REST API
loads it once per app, here, so both price a VM with the same model.
"""

from __future__ import annotations

from corral.config import Settings
from corral.engines.costing import CostModel, load_cost_model

__all__ = ["CostModel", "settings_cost_model"]


def settings_cost_model(settings: Settings) -> CostModel:
    """The model of the settings (a YAML file) or the shipped, documented default."""
    return load_cost_model(settings.cost_model)
