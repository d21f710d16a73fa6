"""The demo's alerts: its rules evaluated once on the replayed history, so a new user sees
real alerts (``corral alerts list``) without waiting for the loop.

The same service as ``corral alerts evaluate``, with the demo's own rules
(corral/engines/alerting/demo_rules.yaml) and no channels: nothing is sent from a demo.
"""

from __future__ import annotations

from dataclasses import dataclass

from corral.config import Settings
from corral.engines.alerting import AlertState, parse_rules
from corral.engines.alerting.loader import demo_text
from corral.inventory.service import Inventory
from corral.metrics.store.base import MetricsStore
from corral.services.alert_facts import FactReader
from corral.services.alerts import AlertService


@dataclass(frozen=True)
class DemoAlert:
    rule: str
    severity: str
    host: str
    entity: str  # a VM's name (its series are kept by UUID), a host's name, or "fleet"
    summary: str


def demo_alerts(inv: Inventory, settings: Settings, store: MetricsStore) -> list[DemoAlert]:
    """Evaluate the demo's rules now; the firing alerts, VMs named."""
    service = AlertService(inv.db, parse_rules(demo_text(), "the demo's alert rules"))
    service.evaluate_store(store, facts=FactReader.from_settings(settings, inv))
    firing = service.alerts(AlertState.firing)
    names = inv.vm_names([str(a.label("entity")) for a in firing if a.label("kind") == "vm"])
    out = []
    for a in firing:
        entity = str(a.label("entity"))
        name = names.get(entity, entity)
        out.append(
            DemoAlert(
                a.rule,
                a.severity.value,
                a.label("host") or "",
                name,
                a.summary.replace(entity, name),
            )
        )
    return sorted(out, key=lambda d: (d.rule, d.host, d.entity))
