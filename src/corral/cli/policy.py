"""``corral policy check``: every inventory VM against the governance policy (drift).

Thin: the rules are corral.engines.policy, the check corral.services.policy. Exits 1 when a
VM breaks a rule (so a scheduled check can alert), 0 when none does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from corral.cli import context
from corral.cli.output import OutputFormat, OutputOption, emit

policy_app = typer.Typer(
    help="Governance policy: check the inventory for drift.",
    no_args_is_help=True,
)
COLUMNS = ["vm", "host", "department", "rule", "message"]


def register(app: typer.Typer) -> None:
    app.add_typer(policy_app, name="policy")


@policy_app.command("check")
def check(
    policy: Path | None = typer.Option(
        None, "--policy", help="Policy YAML (default: the governance_policy setting)."
    ),
    output: OutputFormat = OutputOption,
) -> None:
    """List every rule each VM breaks, with the evidence; exit 1 if there is any."""
    from corral.domain.access import local_administrator
    from corral.services.policy import PolicyService, load_policy

    inv = context.inventory()
    rules = load_policy(policy or context.settings().governance_policy)
    report = PolicyService(inv.db, rules, inv.clock).check_inventory(
        local_administrator(context.os_user())
    )
    emit([_row(f) for f in report.findings], output, COLUMNS)
    typer.echo(
        f"{report.checked} VMs checked, {len(report.findings)} findings"
        + "".join(f"; {rule}: {n}" for rule, n in report.by_rule.items()),
        err=True,
    )
    if report.findings:
        raise typer.Exit(1)


def _row(f: Any) -> dict[str, Any]:
    evidence = ", ".join(f"{k}={v}" for k, v in f.evidence.items())
    return {
        "vm": f.vm_name,
        "host": f.host or "",
        "department": f.department or "",
        "rule": f.rule,
        "message": f.message + (f" [{evidence}]" if evidence else ""),
    }
