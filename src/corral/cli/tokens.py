"""API tokens: created here, shown once, stored hashed."""

from __future__ import annotations

import typer

from corral.cli import context
from corral.cli.output import OutputFormat, OutputOption, emit

token_app = typer.Typer(help="Create, list and revoke API bearer tokens.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(token_app, name="token")


@token_app.command("create")
def create(
    name: str = typer.Argument(..., help="What the token is for, e.g. ci-bot."),
    user: str | None = typer.Option(
        None, "--user", "-u", help="The user it belongs to (default: local-admin, role admin)."
    ),
) -> None:
    """Create a token carrying USER's roles; it is printed once and only its hash is kept."""
    token = context.tokens().create(name, user)
    typer.echo(token)


@token_app.command("list")
def list_tokens(output: OutputFormat = OutputOption) -> None:
    emit(
        context.tokens().list(),
        output,
        ["name", "user", "prefix", "created_at", "last_used_at", "revoked_at"],
    )


@token_app.command("revoke")
def revoke(name: str) -> None:
    context.tokens().revoke(name)
    typer.echo(f"token {name} revoked")
