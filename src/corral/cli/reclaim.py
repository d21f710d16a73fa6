"""``corral reclaim``: take VMs through the staged, reversible reclamation workflow.

Thin commands over corral.reclaim.service.ReclaimService: flag a VM (by hand
or from the live sprawl findings), let ``run`` take the steps that are due,
answer for the owner (confirm, extend), approve, restore, cancel, and see the
cases and the money saved. Every write records who did it (``--as``, default
$USER). Money is in the cost model's currency.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

import typer
import yaml

from corral.cli import context
from corral.cli.output import OutputFormat, OutputOption, emit, emit_object, record, to_json
from corral.domain.reclaim import State
from corral.domain.sprawl import Category
from corral.engines.reclaim import Policy
from corral.errors import ValidationError
from corral.reclaim import findings as flagging
from corral.reclaim.findings import FINDING_CATEGORIES, FlagRow
from corral.reclaim.service import Outcome, ReclaimService
from corral.reclaim.views import CaseRecord

reclaim_app = typer.Typer(
    help="Reclamation: flag → notify owner → quarantine → archive → delete, every step undoable "
    "until deletion.",
    no_args_is_help=True,
)

#: Categories a person may flag a VM under: the sprawl categories, or their own judgement.
FLAG_CATEGORIES = (*(c.value for c in Category), "manual")

CASE_COLUMNS = ["id", "vm", "state", "category", "owner", "monthly_cost", "saving_now_monthly"]
MONEY_FIELDS = ("monthly_cost", "monthly_saving_off", "realized", "saving_now_monthly", "monthly")

ActorOption = typer.Option(None, "--as", help="Who does this (default: $USER, else 'cli').")
CaseArg = typer.Argument(..., help="The case number (see 'corral reclaim list').")


def register(app: typer.Typer) -> None:
    app.add_typer(reclaim_app, name="reclaim")


@functools.cache
def _service() -> ReclaimService:
    from corral.reclaim.setup import reclaim_service

    return reclaim_service(context.inventory(), context.settings())


def _actor(given: str | None) -> str:
    actor = (given or os.environ.get("USER") or "cli").strip()
    if not actor or len(actor) > 128:
        raise ValidationError("--as must be a name of 1 to 128 characters.")
    return actor


def _case_id(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise ValidationError(f"{text!r} is not a case number; see 'corral reclaim list'.")
    return value


def _date(text: str | None, option: str) -> date:
    if not text:
        raise ValidationError(f"{option} is required: give the new expiry as YYYY-MM-DD.")
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValidationError(f"{option} {text!r} is not a date; write it as YYYY-MM-DD.") from None


def _money_text(row: Mapping[str, Any]) -> dict[str, Any]:
    """Money fields as '1,234.50 EUR' for a table; JSON and CSV keep plain numbers."""
    currency = row.get("currency", "")
    return {
        k: f"{v:,.2f} {currency}".strip() if k in MONEY_FIELDS and isinstance(v, int | float) else v
        for k, v in row.items()
    }


def _rows(rows: Sequence[Any], output: OutputFormat) -> list[dict[str, Any]]:
    plain = [record(r) for r in rows]
    return [_money_text(r) for r in plain] if output is OutputFormat.table else plain


# -- opening cases ---------------------------------------------------------------------
@reclaim_app.command("flag")
def flag(
    vm: str = typer.Argument(..., help="UUID or name of the VM."),
    category: str = typer.Option("", "--category", "-c", help=", ".join(FLAG_CATEGORIES)),
    reason: str = typer.Option("", "--reason", "-r", help="Why it should go (required)."),
    actor: str | None = ActorOption,
    output: OutputFormat = OutputOption,
) -> None:
    """Open a reclamation case for one VM; 'run' then notifies its owner."""
    if category not in FLAG_CATEGORIES:
        raise ValidationError(
            f"--category must be one of {', '.join(FLAG_CATEGORIES)} (got {category!r})."
        )
    svc = _service()
    case = svc.flag(vm, category=category, reason=reason, actor=_actor(actor))
    _show_result(case, output)


@reclaim_app.command("flag-findings")
def flag_findings(
    category: list[str] = typer.Option(
        None,
        "--category",
        "-c",
        help="Only these categories (repeatable): idle, powered_off, lease_expired (default all).",
    ),
    min_monthly: float = typer.Option(
        0.0, "--min-monthly", min=0.0, help="Only findings holding at least this much a month."
    ),
    days: int = typer.Option(30, "--days", min=1, max=400, help="Metrics window in days."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show what would be flagged."),
    actor: str | None = ActorOption,
    output: OutputFormat = OutputOption,
) -> None:
    """Flag the VM of every waste finding of the live sprawl analysis.

    VMs with an open case or an extension still in force are skipped (and counted).
    """
    from corral.services.sprawl import AnalysisRun, live_analysis

    wanted = _finding_categories(category or [])
    svc = _service()
    who = _actor(actor)
    run = AnalysisRun.of(context.settings())
    analysis = live_analysis(
        context.inventory(), context.metrics_store(), svc.model, days=days, run=run
    )
    chosen = [
        f
        for f in sorted(analysis.findings, key=lambda f: -f.monthly_cost_held)
        if f.category in wanted and f.monthly_cost_held >= min_monthly
    ]
    rows = flagging.flag_findings(svc, chosen, who, dry_run=dry_run)
    _emit_flagged(rows, analysis.currency, dry_run, output)


def _finding_categories(given: list[str]) -> frozenset[Category]:
    allowed = {c.value: c for c in FINDING_CATEGORIES}
    bad = [g for g in given if g not in allowed]
    if bad:
        raise ValidationError(
            f"--category {bad[0]!r} cannot be flagged from findings; choose from "
            f"{', '.join(allowed)} (orphaned disks are not VMs, snapshot sprawl is cured by "
            "deleting snapshots, owner/purpose findings are governance)."
        )
    return frozenset(allowed[g] for g in given) if given else frozenset(FINDING_CATEGORIES)


def _emit_flagged(rows: list[FlagRow], currency: str, dry_run: bool, output: OutputFormat) -> None:
    done = "would-flag" if dry_run else "flagged"
    counts: Counter[str] = Counter(r.result for r in rows)
    why = Counter(r.skipped_because for r in rows if r.result == "skipped")
    line = f"{counts[done]} {done}, {counts['skipped']} skipped"
    if why:
        line += " (" + ", ".join(f"{n}: {k}" for k, n in sorted(why.items())) + ")"
    if output is OutputFormat.json:
        typer.echo(to_json({"summary": line, "currency": currency, "findings": rows}))
        return
    cols = ["vm", "category", "monthly", "result", "case", "detail"]
    emit(_rows([{**record(r), "currency": currency} for r in rows], output), output, cols)
    if output is OutputFormat.table:
        typer.echo(line)


# -- the scheduler ---------------------------------------------------------------------
@reclaim_app.command("run")
def run(
    dry_run: bool = typer.Option(False, "--dry-run", help="Say what would be done; do nothing."),
    every: float | None = typer.Option(
        None,
        "--every",
        min=10.0,
        help="Keep running: look again every this many seconds (instead of cron).",
    ),
    output: OutputFormat = OutputOption,
) -> None:
    """Take every step that is due: notify, quarantine, archive, delete.

    Steps left half-done (a crash) are finished first. Exit status 1 when any step failed
    (with --every: never exits by itself; failures are printed and retried next time, and
    --output json prints one JSON line per round).
    """
    svc = _service()
    mail = svc.mail_line
    while True:
        outcomes = svc.run(dry_run=dry_run)
        rows = [_outcome_row(o) for o in outcomes]
        if output is OutputFormat.json:
            doc = {"mail": mail, "dry_run": dry_run, "outcomes": rows}
            typer.echo(to_json(doc, line=every is not None))
        else:
            emit(rows, output, ["case", "vm", "step", "result", "detail"], title="reclamation run")
            if output is OutputFormat.table:
                typer.echo(f"{len(rows)} open case(s) looked at. E-mail: {mail}")
        if every is None:
            break
        time.sleep(every)
    if any(o.result == "failed" for o in outcomes):
        raise typer.Exit(1)


def _outcome_row(o: Outcome) -> dict[str, Any]:
    return {"case": o.case_id, "vm": o.vm, "step": o.step, "result": o.result, "detail": o.detail}


# -- reading ---------------------------------------------------------------------------
@reclaim_app.command("list")
def list_cases(
    state: str | None = typer.Option(None, "--state", help="Only cases in this state."),
    open_only: bool = typer.Option(False, "--open", help="Only cases not yet closed."),
    output: OutputFormat = OutputOption,
) -> None:
    """Reclamation cases, oldest first."""
    if state is not None and state not in {s.value for s in State}:
        raise ValidationError(f"--state must be one of {', '.join(State)} (got {state!r}).")
    svc = _service()
    rows = svc.cases(state=state, open_only=open_only)
    emit(_rows(rows, output), output, [*CASE_COLUMNS, "next"], title="reclamation cases")


@reclaim_app.command("show")
def show(case: str = CaseArg, output: OutputFormat = OutputOption) -> None:
    """One case: its facts, evidence, approvals and the VM's reclamation history."""
    svc = _service()
    detail = svc.case(_case_id(case))
    if output is OutputFormat.json:
        typer.echo(to_json(detail))
        return
    facts = _rows([detail], output)[0]
    approvals, history = facts.pop("approvals"), facts.pop("history")
    emit_object(facts, output, title=f"case {detail.id}")
    emit(approvals, output, ["step", "approver", "at", "note"], title="approvals")
    emit(history, output, ["at", "kind", "case", "by", "details"], title="reclamation history")


@reclaim_app.command("savings")
def savings(output: OutputFormat = OutputOption) -> None:
    """Money saved so far by reclamation, and the monthly rate now, per case and in total."""
    svc = _service()
    data = svc.savings()
    cols = ["id", "vm", "state", "realized", "saving_now_monthly"]
    rows = [{k: getattr(c, k) for k in (*cols, "currency")} for c in data.cases]
    if output is OutputFormat.json:
        total = {k: getattr(data, k) for k in ("currency", "realized", "monthly_now")}
        typer.echo(to_json({**total, "cases": rows}))
        return
    total_row = {
        "id": "total",
        "vm": "",
        "state": "",
        "realized": data.realized,
        "saving_now_monthly": data.monthly_now,
        "currency": data.currency,
    }
    emit(_rows([*rows, total_row], output), output, cols, title="realized savings")


@reclaim_app.command("policy")
def policy() -> None:
    """The effective policy as YAML, and which file it came from."""
    svc = _service()
    typer.echo(f"# reclamation policy from: {_policy_source()}")
    typer.echo(yaml.safe_dump(policy_document(svc.policy), sort_keys=False), nl=False)


def _policy_source() -> str:
    path = context.settings().reclaim_policy_path
    return str(path) if path.exists() else "defaults"


def policy_document(p: Policy) -> dict[str, Any]:
    """The policy as plain YAML-able data, in the shape load_policy reads."""
    doc: dict[str, Any] = {}
    for f in dataclasses.fields(p):
        value = getattr(p, f.name)
        if isinstance(value, frozenset):
            value = sorted(value)
        elif isinstance(value, Mapping):
            value = dict(value)
        doc[f.name] = value
    return doc


# -- people's steps --------------------------------------------------------------------
@reclaim_app.command("confirm")
def confirm(
    case: str = CaseArg, actor: str | None = ActorOption, output: OutputFormat = OutputOption
) -> None:
    """The owner agrees: the VM may be quarantined now."""
    svc = _service()
    _show_result(svc.confirm(_case_id(case), _actor(actor)), output)


@reclaim_app.command("extend")
def extend(
    case: str = CaseArg,
    until: str | None = typer.Option(None, "--until", help="New expiry, YYYY-MM-DD (required)."),
    reason: str = typer.Option("", "--reason", "-r", help="Why the VM is kept (required)."),
    actor: str | None = ActorOption,
    output: OutputFormat = OutputOption,
) -> None:
    """The owner keeps the VM until a new date; a quarantined VM is brought back."""
    svc = _service()
    new_expiry = _date(until, "--until")
    _show_result(svc.extend(_case_id(case), new_expiry, reason, _actor(actor)), output)


@reclaim_app.command("approve")
def approve(
    case: str = CaseArg,
    step: str = typer.Argument(..., help="quarantine, archive or delete"),
    note: str = typer.Option("", "--note", help="A note kept with the approval."),
    actor: str | None = ActorOption,
    output: OutputFormat = OutputOption,
) -> None:
    """Approve a step the policy wants approved (not by the person who flagged the VM)."""
    svc = _service()
    _show_result(svc.approve(_case_id(case), step, _actor(actor), note), output)


@reclaim_app.command("restore")
def restore(
    case: str = CaseArg, actor: str | None = ActorOption, output: OutputFormat = OutputOption
) -> None:
    """Put a quarantined or archived VM back as it was, and close the case."""
    svc = _service()
    _show_result(svc.restore(_case_id(case), _actor(actor)), output)


@reclaim_app.command("cancel")
def cancel(
    case: str = CaseArg,
    reason: str = typer.Option("", "--reason", "-r", help="Why (required)."),
    actor: str | None = ActorOption,
    output: OutputFormat = OutputOption,
) -> None:
    """Close a case before the VM was touched (e.g. a false positive)."""
    svc = _service()
    _show_result(svc.cancel(_case_id(case), _actor(actor), reason), output)


def _show_result(case: CaseRecord, output: OutputFormat) -> None:
    if output is OutputFormat.json:
        typer.echo(to_json(case))
        return
    keys = ("id", "vm", "state", "category", "owner", "monthly_cost", "extended_until", "reason")
    brief = {k: getattr(case, k) for k in (*keys, "currency")}
    shown = _rows([brief], output)[0]
    shown.pop("currency")
    emit_object(shown, output, title=f"case {case.id}: {case.vm} is {case.state}")
