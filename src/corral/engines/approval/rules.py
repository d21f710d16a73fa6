"""Approval rules as data: a YAML file (``default_rules.yaml`` ships the defaults).

The rules are parameters of a fixed set of checks (``evaluate``), so every unmet rule can
name itself in its own reason. Loaded through ``corral.safeload`` and validated strictly:
an unknown key or a negative price is refused with the key named.
"""

from __future__ import annotations

from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import ConfigDict, Field, TypeAdapter
from pydantic import ValidationError as PydanticValidationError
from pydantic.dataclasses import dataclass

from corral import safeload
from corral.errors import ConfigError

DEFAULT_RULES = "default_rules.yaml"
_STRICT = ConfigDict(extra="forbid", frozen=True)


class HABreach(StrEnum):
    """What happens to a request whose placement breaks the N+K reserve."""

    deny = "deny"
    approvers = "approvers"


@dataclass(config=_STRICT)
class AutoApprove:
    max_monthly_cost: float = Field(default=500.0, ge=0)


@dataclass(config=_STRICT)
class TwoApprovers:
    production: bool = True
    min_monthly_cost: float | None = Field(default=2000.0, ge=0)


@dataclass(config=_STRICT)
class Expiry:
    pending_days: int = Field(default=14, gt=0)
    approved_days: int = Field(default=7, gt=0)


@dataclass(config=_STRICT)
class ApprovalRules:
    environments: tuple[str, ...] = ("dev", "test", "staging", "prod")
    production: tuple[str, ...] = ("prod",)
    auto_approve: AutoApprove | None = Field(default_factory=AutoApprove)
    two_approvers: TwoApprovers = Field(default_factory=TwoApprovers)
    ha_failures: int | None = Field(default=1, ge=0)
    ha_breach: HABreach = HABreach.deny
    max_lease_days: int = Field(default=365, gt=0)
    expire: Expiry = Field(default_factory=Expiry)

    def is_production(self, environment: str) -> bool:
        return environment in self.production


_ADAPTER = TypeAdapter(ApprovalRules)


def default_rules_text() -> str:
    return (resources.files("corral.engines.approval") / DEFAULT_RULES).read_text("utf-8")


def parse_rules(data: Any, source: str) -> ApprovalRules:
    """Validated rules from a parsed document; ConfigError names the first bad key."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source} must be a mapping of rule names to settings.")
    try:
        rules = _ADAPTER.validate_python(data)
    except PydanticValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "(top)"
        raise ConfigError(f"{source}: {where}: {err['msg']}; fix it and retry.") from None
    unknown = set(rules.production) - set(rules.environments)
    if unknown:
        raise ConfigError(
            f"{source}: production names {sorted(unknown)} which are not in environments."
        )
    return rules


def load_rules(path: Path | None = None) -> ApprovalRules:
    """The rules in ``path``, or the shipped default when ``path`` is None."""
    if path is None:
        text = default_rules_text()
        return parse_rules(safeload.parse_yaml(text, "default rules", ConfigError), DEFAULT_RULES)
    data = safeload.load_file(path, "approval rules", ConfigError)
    return parse_rules(data, f"approval rules {path}")
