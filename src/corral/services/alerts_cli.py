"""What the alert interfaces (CLI and REST) share: the service from the settings, and the
parsing of their small arguments (label matchers, inhibitions), so they hold no logic."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from corral.config import Settings
from corral.engines.alerting import Alert, AlertState, Inhibition, Silence, load_rules
from corral.engines.alerting.kinds import seconds
from corral.engines.alerting.model import labels_of
from corral.errors import ValidationError
from corral.inventory.service import Inventory
from corral.metrics.store import open_store
from corral.metrics.store.base import MetricsStore
from corral.notify.channels import parse_specs
from corral.services.alert_facts import FactReader
from corral.services.alert_loop import AlertLoop, LoopRound, Parts, Sources
from corral.services.alert_setup import alert_service, rules_path
from corral.services.alerts import AlertService
from corral.services.backup import policy_path
from corral.store.db import Database

__all__ = [
    "Alert",
    "AlertLoop",
    "AlertState",
    "LoopRound",
    "Silence",
    "facts",
    "inhibitions",
    "loop",
    "matchers",
    "rules_view",
    "seconds",
    "service",
]


def service(settings: Settings, db: Database) -> AlertService:
    return alert_service(settings, db)


def facts(settings: Settings, inventory: Inventory) -> FactReader:
    """What the HA, licence and backup rules read: the fleet, licences, restore points."""
    return FactReader.from_settings(settings, inventory)


def loop(
    settings: Settings,
    inventory: Inventory,
    store: MetricsStore | None = None,
    interval_s: float | None = None,
) -> AlertLoop:
    """The evaluation loop of ``corral alerts run`` and of the server (every
    ``alert_interval_s`` unless ``interval_s`` is given; the settings' metrics store unless
    ``store`` is given)."""

    def build() -> Parts:
        return service(settings, inventory.db), facts(settings, inventory)

    alerts, fact_reader = build()
    return AlertLoop(
        alerts,
        store or open_store(settings.metrics_url),
        inventory.db,
        interval_s or settings.alert_interval_s,
        fact_reader,
        Sources(source_files(settings), build),
    )


def source_files(settings: Settings) -> tuple[Path, ...]:
    """The files the loop reads its rules and facts from, watched for changes: the rules, the
    cost model and the backup policy (each the setting, else where its default would be)."""
    rules = settings.alert_rules or settings.home / "alerts.yaml"
    found = (rules, settings.cost_model, policy_path(settings))
    return tuple(p for p in found if p is not None)


def matchers(items: Sequence[str]) -> dict[str, str]:
    """``LABEL=VALUE`` arguments as a mapping; one clear error for a malformed one."""
    out: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise ValidationError(f"{item!r} is not LABEL=VALUE, e.g. host=kvm-03.")
        out[name.strip()] = value.strip()
    return out


def inhibitions(items: Sequence[str]) -> list[Inhibition]:
    """``LABEL=VALUE[,LABEL=VALUE]:REASON``: conditions Corral itself causes right now."""
    found = []
    for item in items:
        labels, _, reason = item.partition(":")
        found.append(Inhibition(labels_of(matchers(labels.split(","))), reason or "inhibited"))
    return found


@dataclass(frozen=True)
class RulesView:
    title: str
    rules: list[dict[str, Any]]
    channels: list[str]


def rules_view(settings: Settings) -> RulesView:
    path = rules_path(settings)
    ruleset = load_rules(path)
    rows = [
        {
            "name": r.name,
            "kind": r.kind,
            "for_s": r.common.for_s,
            "severity": r.common.severity.value,
            "params": r.params.model_dump(),
        }
        for r in ruleset.rules
    ]
    names = [f"{s.name} ({s.type})" for s in parse_specs(ruleset.channels)]
    return RulesView(f"Alert rules ({path or 'shipped example'})", rows, names)
