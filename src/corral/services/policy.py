"""Governance policies at work: a request that breaks one is refused naming the rule, and
``corral policy check`` finds every inventory VM that has drifted from them, with evidence.

The rules and the check are the pure engine corral.engines.policy; this module loads the
policy file (the ``governance_policy`` setting; none: no rule) and turns requests and
inventory rows into the engine's facts.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

from sqlalchemy import select

from corral.domain.access import Permission, Principal
from corral.domain.blueprint import Part
from corral.engines.policy import Facts, Policy, Violation, check, policy_from_mapping
from corral.errors import ValidationError
from corral.reports.scorecard import PolicyDrift
from corral.store import models as m
from corral.store.db import Database


def load_policy(path: Path | None) -> Policy:
    """The policy in ``path`` (YAML or JSON), checked; no file: a policy with no rule."""
    if path is None:
        return Policy()
    from corral.safeload import load_file

    return policy_from_mapping(load_file(path, "governance policy"), str(path))


def configured_policy(path: Path | None) -> Policy | None:
    """The policy the ``governance_policy`` setting names; None when it names none."""
    return None if path is None else load_policy(path)


@dataclass(frozen=True, slots=True)
class Finding:
    """One inventory VM breaking one rule, with what was found."""

    vm_uuid: str
    vm_name: str
    host: str | None
    department: str | None
    rule: str
    message: str
    evidence: dict[str, str]


@dataclass(frozen=True, slots=True)
class PolicyReport:
    checked: int
    findings: tuple[Finding, ...]
    by_rule: dict[str, int]


@dataclass(frozen=True, slots=True)
class RequestFacts:
    """What a request says that a policy looks at."""

    owner: str
    department: str
    purpose: str
    environment: str
    lease_days: int
    parts: tuple[Part, ...]
    blueprint: bool


def request_violations(
    policy: Policy, r: RequestFacts, network_of: Callable[[str], str | None]
) -> list[Violation]:
    """The rules a request breaks, for each of its parts (a blueprint's tiers).

    The network rule checks every network a VM would join: a template's network for a plain
    request; for a blueprint, each tier's ``networks``. A blueprint's VMs are also on their
    unit's own network, which is allowed by construction and never listed in a policy: Corral
    makes it for that unit alone when it is deployed (a name unknown before, with no forward
    and no address, so nothing outside the unit reaches it) and removes it at teardown."""
    meta: dict[str, str | None] = {
        "owner": r.owner,
        "department": r.department,
        "purpose": r.purpose,
        "environment": r.environment,
    }
    out: list[Violation] = []
    for p in r.parts:
        name = f"tier {p.tier}" if p.tier else "the request"
        nets = p.networks if r.blueprint else tuple(n for n in [network_of(p.template)] if n)
        facts = Facts(
            name=name,
            metadata=meta,
            environment=r.environment,
            vcpus=p.size.vcpus,
            memory_mib=p.size.memory_mib,
            disk_gb=p.size.disk_gb or None,
            networks=nets or None,
            lease_days=r.lease_days,
        )
        out += [v for v in check(policy, facts, protection_known=False) if v not in out]
    return out


def request_checker(
    policy: Policy, network_of: Callable[[str], str | None]
) -> Callable[[RequestFacts], None]:
    """What the request workflow calls on every request it checks (before quota and rules)."""

    def checker(r: RequestFacts) -> None:
        refuse(request_violations(policy, r, network_of))

    return checker


def refuse(violations: list[Violation]) -> None:
    """Block a request that breaks a rule: one sentence naming each rule broken."""
    if violations:
        raise ValidationError(
            "the request breaks the governance policy: "
            + "; ".join(f"{v.rule}: {v.message}" for v in violations)
        )


class PolicyService:
    def __init__(
        self,
        db: Database,
        policy: Policy,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.db = db
        self.policy = policy
        self.clock = clock

    def drift(self) -> PolicyDrift:
        """The whole inventory's drift, as the sprawl scorecard's sign No.1 counts it."""
        report = self._check(None)
        return PolicyDrift(
            rules=rule_count(self.policy),
            vms_checked=report.checked,
            vms_breaking=len({f.vm_uuid for f in report.findings}),
            by_rule=report.by_rule,
        )

    def check_inventory(self, who: Principal) -> PolicyReport:
        """Every VM the caller may see against every rule (templates and deleted VMs aside)."""
        return self._check(who.visible_departments(Permission.vm_read))

    def _check(self, seen: frozenset[str] | None) -> PolicyReport:
        today = self.clock().date()
        findings: list[Finding] = []
        checked = 0
        with self.db.session() as s:
            q = select(m.VM).where(m.VM.deleted_at.is_(None), m.VM.is_template.is_(False))
            if seen is not None:
                q = q.where(m.VM.department.in_(seen))
            for vm in s.scalars(q.order_by(m.VM.name)):
                checked += 1
                host = vm.host.name if vm.host is not None else None
                for v in check(self.policy, _facts(vm, today)):
                    findings.append(
                        Finding(
                            vm.uuid, vm.name, host, vm.department, v.rule, v.message, v.evidence
                        )
                    )
        counts = Counter(f.rule for f in findings)
        return PolicyReport(checked, tuple(findings), dict(sorted(counts.items())))


def rule_count(policy: Policy) -> int:
    """How many rules a policy sets (each required field and each environment's sizes count)."""
    flags = (policy.prod_protection, policy.allowed_networks, policy.max_lease_days)
    return len(policy.required_metadata) + len(policy.sizes) + sum(bool(f) for f in flags)


def _facts(vm: m.VM, today: date) -> Facts:
    nets = tuple(
        sorted(
            {
                str(n.get("network") or n.get("source"))
                for n in vm.nics or ()
                if isinstance(n, dict) and (n.get("network") or n.get("source"))
            }
        )
    )
    return Facts(
        name=vm.name,
        metadata={
            "owner": vm.owner,
            "department": vm.department,
            "purpose": vm.purpose,
            "project": vm.project,
            "environment": vm.environment,
            "expires_on": vm.expires_on.isoformat() if vm.expires_on else None,
        },
        environment=vm.environment,
        vcpus=vm.vcpus,
        memory_mib=vm.memory_max_mib or vm.memory_mib,
        disk_gb=vm.disk_bytes / 1e9 if vm.disk_bytes else None,
        protection_tier=vm.protection_tier,
        networks=nets,
        expires_on=vm.expires_on,
        today=today,
    )


__all__ = [
    "Finding",
    "PolicyReport",
    "PolicyService",
    "RequestFacts",
    "configured_policy",
    "load_policy",
    "refuse",
    "request_checker",
    "request_violations",
]
