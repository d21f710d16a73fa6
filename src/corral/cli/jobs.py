"""``corral jobs``: the server's long-running jobs (planning, simulation, reports), from the store.

The CLI reads the same table the API's job runner writes, so a job submitted
over HTTP can be followed, inspected and cancelled from a shell.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import typer

from corral.cli import context
from corral.cli.output import OutputFormat, OutputOption, emit, emit_object, to_json
from corral.services.jobs import Job, JobService, JobState

jobs_app = typer.Typer(help="Long-running jobs run by the API server.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(jobs_app, name="jobs")


def _service() -> JobService:
    return JobService(context.inventory().db)


def _row(job: Job) -> dict[str, Any]:
    return {
        "id": job.id,
        "kind": job.kind,
        "state": job.state,
        "progress": round(job.progress, 2),
        "created": job.created_at,
        "started": job.started_at,
        "finished": job.finished_at,
        "by": job.submitted_by,
        "error": job.error.code if job.error else None,
    }


@jobs_app.command("list")
def list_jobs(
    state: JobState | None = typer.Option(None, "--state", help="Only jobs in this state."),
    kind: str | None = typer.Option(None, "--kind", help="Only jobs of this kind."),
    limit: int = typer.Option(50, "--limit", min=1, max=500, help="At most this many, newest."),
    output: OutputFormat = OutputOption,
) -> None:
    """The newest jobs first: kind, state, progress and times."""
    page = _service().list(limit=limit, state=state, kind=kind)
    cols = ["id", "kind", "state", "progress", "created", "started", "finished", "by", "error"]
    emit([_row(j) for j in page.items], output, cols, title=f"Jobs ({page.total} in all)")


@jobs_app.command("show")
def show(
    job_id: str = typer.Argument(..., help="The job's id."), output: OutputFormat = OutputOption
) -> None:
    """One job: its state, its result (JSON) or the problem that failed it."""
    job = _service().get(job_id)
    if output is OutputFormat.json:
        typer.echo(to_json(dataclasses.asdict(job)))
        return
    row = _row(job)
    if job.error:
        row["error"] = f"{job.error.code}: {job.error.detail}"
    emit_object(row, output, title=f"Job {job.id}")
    if job.result is not None:
        typer.echo(to_json(job.result))


@jobs_app.command("cancel")
def cancel(job_id: str = typer.Argument(..., help="The job's id.")) -> None:
    """Cancel a queued job at once, a running one at its next progress report."""
    job = _service().cancel(job_id)
    typer.echo(
        f"job {job.id}: {job.state.value}"
        + (" (cancel requested)" if job.state is JobState.running else "")
    )
