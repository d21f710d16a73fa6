"""Command-line values checked without Pydantic, for the commands that must start quickly.

Typer checks each option's value with a Pydantic TypeAdapter that it builds when the command
runs: importing Pydantic and building the adapters costs about 0.1 s, a third of ``corral
vms``. The values a listing takes are plain (nothing, a flag, a word, a whole number, one of
an enum's values) and need no Pydantic. :class:`QuickCommand` gives each of its parameters a
check that settles those values itself, with the result Typer's adapter gives, and hands any
other value (``--limit 1e3``, an unknown choice) to Typer's own adapter, so the messages and
the edge cases stay Typer's. tests/test_quick_cli.py checks that both agree.

This reaches into Typer's private coercion layer; on a Typer without it the command is a
plain TyperCommand (slower, never different).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from typer._click import Context, Parameter
from typer.core import TyperCommand

try:
    from typer._coercion import RuntimeParam, TypeDescriptor, build_runtime_param
    from typer._param_types import coerce_cli_choice
except ImportError:  # pragma: no cover - another Typer: its own checks, at its own speed
    RuntimeParam = None  # type: ignore[assignment,misc]

_WHOLE = re.compile(r"-?[0-9]+")
UNSETTLED = object()


def plain_value(value: Any, descriptor: Any, ctx: Any = None) -> Any:
    """``value`` checked as Typer would, or ``UNSETTLED`` when Typer's adapter must say."""
    info, annotation = descriptor.parameter_info, descriptor.annotation
    if info.parser is not None:
        return UNSETTLED
    if annotation is str and isinstance(value, str):
        return value
    if annotation is bool and isinstance(value, bool):
        return value
    if annotation is int and info.min is None and info.max is None:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and _WHOLE.fullmatch(value):
            return int(value)
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        try:
            return coerce_cli_choice(
                value, choices=tuple(annotation), case_sensitive=info.case_sensitive, ctx=ctx
            )
        except ValueError:
            return UNSETTLED
    return UNSETTLED


if RuntimeParam is not None:

    @dataclass(frozen=True)
    class _PlainFirst(RuntimeParam):
        descriptor: TypeDescriptor

        def _coerce_value(self, value: Any, param: Any, ctx: Context) -> Any:
            settled = plain_value(value, self.descriptor, ctx)
            if settled is not UNSETTLED:
                return settled
            typer_own = build_runtime_param(self.descriptor)
            return typer_own._coerce_value(value, param=param, ctx=ctx)


def check_plainly(params: Sequence[object]) -> None:
    """Give each of a command's parameters the check that needs no Pydantic for plain values."""
    if RuntimeParam is None:  # pragma: no cover
        return
    for param in params:
        descriptor = getattr(param, "type_descriptor", None)
        if descriptor is None or getattr(param, "_runtime_param", False) is not None:
            continue
        if descriptor.file_annotation is None and not (descriptor.is_list or descriptor.is_tuple):
            param._runtime_param = _PlainFirst(  # type: ignore[attr-defined]
                parameter_info=descriptor.parameter_info,
                annotation=descriptor.annotation,
                descriptor=descriptor,
            )


class QuickCommand(TyperCommand):
    """A Typer command whose plain option values are checked without importing Pydantic."""

    def get_params(self, ctx: Context) -> list[Parameter]:
        params = super().get_params(ctx)  # with --help, made on demand
        check_plainly(params)
        return params
