"""Cost model, per-VM monthly cost, chargeback and licence compliance (pure, plain data)."""

from corral.engines.costing.chargeback import UNASSIGNED, ChargebackRow, Dimension, chargeback
from corral.engines.costing.licences import (
    ComplianceStatus,
    LicenceReport,
    LicenceUsage,
    LicensingSuggestion,
    licence_report,
)
from corral.engines.costing.loader import (
    default_cost_model_text,
    load_cost_model,
    parse_cost_model,
)
from corral.engines.costing.model import (
    CostModel,
    HostCost,
    Labour,
    Licence,
    LicenceKind,
    LicenceScope,
    StorageCost,
)
from corral.engines.costing.pricing import (
    PricedHost,
    PricedVM,
    RateCard,
    VMCost,
    host_monthly_cost,
    licensed_families,
    price_fleet,
    price_vm,
    rate_card,
)

__all__ = [
    "UNASSIGNED",
    "ChargebackRow",
    "ComplianceStatus",
    "CostModel",
    "Dimension",
    "HostCost",
    "Labour",
    "Licence",
    "LicenceKind",
    "LicenceReport",
    "LicenceScope",
    "LicenceUsage",
    "LicensingSuggestion",
    "PricedHost",
    "PricedVM",
    "RateCard",
    "StorageCost",
    "VMCost",
    "chargeback",
    "default_cost_model_text",
    "host_monthly_cost",
    "licence_report",
    "licensed_families",
    "load_cost_model",
    "parse_cost_model",
    "price_fleet",
    "price_vm",
    "rate_card",
]
