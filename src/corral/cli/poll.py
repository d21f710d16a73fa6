"""``corral poll``: run the sharded host poller, and see which hosts are overdue."""

from __future__ import annotations

import dataclasses
import sys

import typer

from corral.cli import context
from corral.cli.output import OutputFormat, OutputOption, emit_object
from corral.errors import ValidationError

poll_app = typer.Typer(
    help="Keep every host current: each read once per cycle, sharded over processes.",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    app.add_typer(poll_app, name="poll")


@poll_app.command("run")
def run(
    shards: int = typer.Option(1, "--shards", help="Poller processes to run (each a shard)."),
    duration: float | None = typer.Option(None, "--for", help="Stop after this many seconds."),
) -> None:
    """Poll every host on its own schedule; lifecycle events read a host at once."""
    if shards < 1:
        raise ValidationError("--shards is at least 1.")
    from corral.services.poller import PollConfig, Shard, run_shards

    if shards > 1:
        child = [sys.executable, "-m", "corral", "poll", "run", "--shards", "1"]
        run_shards(shards, child, duration)
        return
    shard = Shard(context.inventory(), PollConfig.from_settings(context.settings()))
    typer.echo(f"poller {shard.owner} started", err=True)
    try:
        stats = shard.run(duration)
    except KeyboardInterrupt:
        shard.stop()
        return
    typer.echo(
        f"{stats.reads} reads, {stats.unchanged} unchanged, {stats.synced} synced, "
        f"{stats.failed} failed, {stats.event_reads} on events",
        err=True,
    )


@poll_app.command("status")
def status(output: OutputFormat = OutputOption) -> None:
    """Hosts read within the cycle, and those overdue (not read within it)."""
    from corral.inventory.sync import utcnow
    from corral.services.poll_store import PollStore

    got = PollStore(context.inventory().db).status(utcnow(), context.settings().poll_cycle_s)
    emit_object(dataclasses.asdict(got), output, title="Polling")
