"""Users, their roles and departments (tenants): the local administrator manages them here."""

from __future__ import annotations

import sys
from typing import Any

import typer

from corral.cli import context
from corral.cli.output import OutputFormat, OutputOption, emit
from corral.errors import ValidationError

user_app = typer.Typer(
    help="Add, list, disable users; grant and revoke roles and departments.",
    no_args_is_help=True,
)

COLUMNS = ["name", "roles", "departments", "email", "password", "enabled", "created_at"]
RoleOption = typer.Option([], "--role", "-r", help="requester, approver, operator, admin, auditor.")
DepartmentOption = typer.Option([], "--department", "-d", help="A department (tenant) name.")


def register(app: typer.Typer) -> None:
    app.add_typer(user_app, name="user")


def _row(info: Any) -> dict[str, Any]:
    return {
        "name": info.name,
        "roles": ",".join(info.roles),
        "departments": ",".join(info.departments),
        "email": info.email or "",
        "password": "set" if info.has_password else "none",
        "enabled": info.enabled,
        "created_at": info.created_at.isoformat(),
    }


def _password(from_stdin: bool) -> str | None:
    if not from_stdin:
        return None
    text = sys.stdin.readline().rstrip("\n")
    if not text:
        raise ValidationError("--password-stdin read an empty line; send the password on stdin.")
    return text


@user_app.command("add")
def add(
    name: str = typer.Argument(..., help="The login, e.g. alice."),
    role: list[str] = RoleOption,
    department: list[str] = DepartmentOption,
    email: str | None = typer.Option(None, "--email", help="Where mail for this user goes."),
    password_stdin: bool = typer.Option(
        False, "--password-stdin", help="Read a password (12+ characters) from stdin."
    ),
    output: OutputFormat = OutputOption,
) -> None:
    """Add a user; without --password-stdin the user signs in with tokens only."""
    info = context.users().add(
        name, roles=role, departments=department, email=email, password=_password(password_stdin)
    )
    emit([_row(info)], output, COLUMNS)


@user_app.command("list")
def list_users(output: OutputFormat = OutputOption) -> None:
    emit([_row(u) for u in context.users().all()], output, COLUMNS)


@user_app.command("disable")
def disable(name: str, output: OutputFormat = OutputOption) -> None:
    """Disable a user: every token of theirs stops working with the next request."""
    emit([_row(context.users().disable(name))], output, COLUMNS)


@user_app.command("enable")
def enable(name: str, output: OutputFormat = OutputOption) -> None:
    emit([_row(context.users().enable(name))], output, COLUMNS)


@user_app.command("grant")
def grant(
    name: str,
    role: list[str] = RoleOption,
    department: list[str] = DepartmentOption,
    output: OutputFormat = OutputOption,
) -> None:
    """Give a user roles and/or departments (effective with their next request)."""
    emit([_row(context.users().grant(name, roles=role, departments=department))], output, COLUMNS)


@user_app.command("revoke")
def revoke(
    name: str,
    role: list[str] = RoleOption,
    department: list[str] = DepartmentOption,
    output: OutputFormat = OutputOption,
) -> None:
    """Take roles and/or departments from a user (effective with their next request)."""
    emit([_row(context.users().revoke(name, roles=role, departments=department))], output, COLUMNS)


@user_app.command("password")
def password(name: str) -> None:
    """Set a user's password, read from stdin (12+ characters)."""
    context.users().set_password(name, _password(True) or "")
    typer.echo(f"password of {name} set")
