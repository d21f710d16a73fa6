"""Alerting as a pure engine: rules in, metric values in, alert states and notifications out.

``loader`` reads rules (one class per kind in ``kinds/``), ``evaluate`` runs them on a
``Snapshot``, ``lifecycle.step`` moves alerts through pending -> firing -> acknowledged ->
resolved and says which notifications are due. No I/O: corral.services.alerts reads the
store, keeps the state and the outbox, and hands notifications to the channels.
"""

from corral.engines.alerting.kinds import KINDS, Common, Needs, Rule
from corral.engines.alerting.kinds.base import Fact
from corral.engines.alerting.lifecycle import Outcome, acknowledge, group_of, step
from corral.engines.alerting.loader import RuleSet, load_rules, parse_rules
from corral.engines.alerting.model import (
    Alert,
    AlertState,
    BackupAge,
    Condition,
    Event,
    Inhibition,
    LicenceCount,
    Notification,
    Series,
    Severity,
    Silence,
    Snapshot,
)


def evaluate(rules: RuleSet, snapshot: Snapshot) -> list[Condition]:
    """Every rule's conditions that hold at ``snapshot.now``."""
    return [c for rule in rules.rules for c in rule.evaluate(snapshot)]


def needs(rules: RuleSet) -> Needs:
    """What all the rules read, merged (the longest history window per series wins)."""
    latest: set[tuple[str, str]] = set()
    history: dict[tuple[str, str], float] = {}
    seen: set[str] = set()
    facts: set[Fact] = set()
    for rule in rules.rules:
        n = rule.needs()
        latest |= n.latest
        seen |= n.last_seen
        facts |= n.facts
        for key, window in n.history.items():
            history[key] = max(window, history.get(key, 0.0))
    return Needs(frozenset(latest), history, frozenset(seen), frozenset(facts))


__all__ = [
    "KINDS",
    "Alert",
    "AlertState",
    "BackupAge",
    "Common",
    "Condition",
    "Event",
    "Fact",
    "Inhibition",
    "LicenceCount",
    "Needs",
    "Notification",
    "Outcome",
    "Rule",
    "RuleSet",
    "Series",
    "Severity",
    "Silence",
    "Snapshot",
    "acknowledge",
    "evaluate",
    "group_of",
    "load_rules",
    "needs",
    "parse_rules",
    "step",
]
