"""A command imports what it uses: facts about imported modules, never timings.

Speed itself is measured by benchmarks/bench_cli.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import typer
import typer.main
from hypothesis import given, settings
from hypothesis import strategies as st

HEAVY = ("ortools", "pandas", "alembic", "libvirt", "fastapi", "numpy")


def _modules_after(code: str, env: dict[str, str] | None = None) -> set[str]:
    """The modules a fresh interpreter holds after running ``code``."""
    script = textwrap.dedent(code) + "\nimport sys\nprint('\\n'.join(sorted(sys.modules)))\n"
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env=env or dict(os.environ),
        timeout=120,
        check=True,
    )
    return set(done.stdout.split())


def _heavy(mods: set[str]) -> list[str]:
    return sorted(h for h in HEAVY if h in mods)


def test_inventory_commands_import_no_engines() -> None:
    mods = _modules_after("import corral.cli.inventory, corral.inventory.service")
    assert _heavy(mods) == []
    assert not [m for m in mods if m.startswith("corral.engines")]


def test_reading_a_fleet_does_not_load_the_solvers() -> None:
    """Cost and sprawl read fleets too: the planning model alone must not pull in OR-Tools;
    the plan and HA commands load it only when a consolidation runs."""
    mods = _modules_after("import corral.services.fleet, corral.engines.planning.model")
    assert "ortools" not in mods and "pandas" not in mods
    mods = _modules_after("import corral.cli.plan, corral.cli.ha, corral.services.planning")
    assert "ortools" not in mods and "pandas" not in mods


def test_help_imports_no_command_module() -> None:
    mods = _modules_after(
        """
        import contextlib, io, sys
        sys.argv = ["corral", "--help"]
        from corral.cli.main import run
        with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):
            run()
        """
    )
    cli = sorted(m for m in mods if m.startswith("corral."))
    assert cli == [
        "corral.cli",
        "corral.cli.main",
        "corral.cli.quickparams",
        "corral.config",
        "corral.errors",
    ]
    assert _heavy(mods) == [] and "sqlalchemy" not in mods


def test_listing_on_a_current_database_does_not_load_alembic(tmp_path: Path) -> None:
    env = {**os.environ, "CORRAL_HOME": str(tmp_path)}
    env.pop("CORRAL_DATABASE_URL", None)
    listing = """
        import contextlib, io, sys
        sys.argv = ["corral", "vms", "-o", "json"]
        from corral.cli.main import run
        with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):
            run()
        """
    first = _modules_after(listing, env)  # creates the database: migrations run
    assert "alembic" in first
    again = _modules_after(listing, env)
    assert _heavy(again) == []


def test_head_revision_is_alembics() -> None:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from corral.store.db import HEAD_REVISION, MIGRATIONS

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    assert ScriptDirectory.from_config(cfg).get_heads() == [HEAD_REVISION]


def _short_help(cmd: typer.core.TyperCommand | typer.core.TyperGroup) -> str:
    return cmd.get_short_help_str(limit=1000)


def test_the_static_command_list_matches_the_commands() -> None:
    from corral.cli.main import COMMANDS, app

    group = typer.main.get_group(app)
    ctx = typer.Context(group)
    real = {n: group.commands[n] for n in group.commands}
    assert set(real) == set(COMMANDS)
    for name, (module, line) in COMMANDS.items():
        assert _short_help(real[name]) == line, name
        callback = real[name].callback
        if callback is not None and not isinstance(real[name], typer.core.TyperGroup):
            assert callback.__module__ == module, name
    assert group.list_commands(ctx)[: len(COMMANDS)] == list(COMMANDS)


@pytest.mark.parametrize("command", ["vms", "plan", "ha", "cost", "serve"])
def test_each_command_runs_from_the_lazy_group(command: str, tmp_path: Path) -> None:
    env = {**os.environ, "CORRAL_HOME": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "corral", command, "--help"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert f"corral {command}" in done.stdout


def test_listing_on_a_current_database_imports_no_orm_and_no_pydantic(tmp_path: Path) -> None:
    """``corral vms`` reads a current database with the driver (corral.inventory.listing) and
    checks its options without Pydantic (corral.cli.quickparams)."""
    env = {**os.environ, "CORRAL_HOME": str(tmp_path)}
    env.pop("CORRAL_DATABASE_URL", None)
    listing = """
        import contextlib, io, sys
        sys.argv = ["corral", "vms", "-o", "JSON", "--owner", "x", "--limit", "3", "--desc"]
        from corral.cli.main import run
        with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):
            run()
        """
    assert "sqlalchemy" in _modules_after(listing, env)  # no database yet: the service makes it
    again = _modules_after(listing, env)
    assert "corral.inventory.listing" in again
    assert [m for m in ("sqlalchemy", "pydantic", "corral.store.models") if m in again] == []


def _vms_command() -> tuple[typer.core.TyperCommand, typer.Context]:
    from corral.cli import inventory

    sub = typer.Typer()
    inventory.register(sub)
    command = typer.main.get_group(sub).commands["vms"]
    assert isinstance(command, typer.core.TyperCommand)
    ctx = typer.Context(command)
    command.get_params(ctx)  # gives each parameter its quick check
    return command, ctx


def _outcome(check: Any, value: str | None, param: Any, ctx: typer.Context) -> tuple[str, Any]:
    """What a parameter's check makes of ``value``: the value and its type, or the refusal."""
    try:
        settled = check.coerce(value, param=param, ctx=ctx)
    except typer.BadParameter as exc:
        return "refused", exc.format_message()
    return type(settled).__name__, settled


VALUES = st.one_of(
    st.text(st.sampled_from("0123456789-+ ._eExJSONjsonCsvtable\u0663"), max_size=5),
    st.sampled_from(["json", "JSON", "Csv", "table", "tables", "7", "007", "-3", " 7", "1e3"]),
    st.integers(-(10**20), 10**20).map(str),
    st.none(),
)


@settings(max_examples=300, deadline=None)
@given(value=VALUES)
def test_the_quick_checks_give_what_typers_give(value: str | None) -> None:
    from typer._coercion import build_runtime_param

    command, ctx = _vms_command()
    for param in command.params:
        if param.name not in ("limit", "owner", "output", "sort", "templates"):
            continue
        quick = param.get_runtime_param()  # type: ignore[attr-defined]
        typers = build_runtime_param(param.type_descriptor)  # type: ignore[attr-defined]
        assert type(quick) is not type(typers), "the quick check was not installed"
        mine, theirs = (_outcome(c, value, param, ctx) for c in (quick, typers))
        assert mine == theirs, param.name


def test_plain_values_are_settled_without_typers_adapter() -> None:
    from corral.cli.output import OutputFormat
    from corral.cli.quickparams import UNSETTLED, plain_value

    command, ctx = _vms_command()
    by_name = {p.name: p.type_descriptor for p in command.params}  # type: ignore[attr-defined]
    assert plain_value("12", by_name["limit"], ctx) == 12
    assert plain_value("JSON", by_name["output"], ctx) is OutputFormat.json
    assert plain_value("alice", by_name["owner"], ctx) == "alice"
    assert plain_value("1e3", by_name["limit"], ctx) is UNSETTLED  # Typer's adapter decides
    assert plain_value("xml", by_name["output"], ctx) is UNSETTLED
