"""Services hand typed results to the interfaces, not dictionaries.

Every public function and every public method of a public class in the service layer
(corral.inventory, corral.reclaim, corral.reports, corral.services) is read with
``typing.get_type_hints``; a return annotated ``dict[str, Any]``, ``list[dict[str, Any]]``
or another container of such dictionaries fails, unless it is in ALLOWED with its reason.
An allowed entry that no longer returns a dictionary fails too, so the list only shrinks.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import typing
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import corral

SERVICE_PACKAGES = ("corral.inventory", "corral.reclaim", "corral.reports", "corral.services")

#: A typed result's own JSON serialiser (``SyncReport.as_dict``, ``PlanResult.to_dict``):
#: the dictionary is the output format, made from the typed value the interface holds.
SERIALISERS = frozenset({"as_dict", "to_dict"})

_PENDING = "the reclamation step's pending record, kept in the case's JSON column"

#: "module:qualname" -> why a dictionary is the right result there.
ALLOWED: dict[str, str] = {
    # JSON documents: the dictionary IS the output format.
    "corral.inventory.views:as_row": "the export's JSON-ready row of a typed view",
    "corral.services.fleet:live_document": "a corral-fleet/1 document, written as YAML",
    "corral.services.fleet_entries:host_doc": "a host entry of a corral-fleet/1 document",
    "corral.services.fleet_entries:vm_doc": "a VM entry of a corral-fleet/1 document",
    "corral.services.fleet_entries:volume_doc": "a volume entry of a corral-fleet/1 document",
    # Store columns: the values of one ORM row, not a result for an interface.
    "corral.inventory.records:meta_to_columns": "column values of a VM row",
    "corral.inventory.records:row_meta": "column values of a VM row",
    "corral.inventory.records:facts_columns": "column values of a VM row",
    # Inside the reclamation service: a step's record of what it will do and did, written
    # to the case's ``pending`` JSON column and the event's details, never to an interface.
    "corral.reclaim.executor:claim": _PENDING,
    "corral.reclaim.notices:prepare_notice": _PENDING,
    "corral.reclaim.notices:mail_fields": _PENDING,
    **{
        f"corral.reclaim.steps.{module}:{cls}.{method}": _PENDING
        for module, cls, methods in (
            ("base", "StepAction", ("prepare", "act")),
            ("archive", "Archive", ("prepare", "act")),
            ("cancel", "Cancel", ("act",)),
            ("confirm", "Confirm", ("act",)),
            ("delete", "Delete", ("prepare", "act")),
            ("extend", "Extend", ("prepare", "act")),
            ("notify", "Notify", ("prepare", "act")),
            ("quarantine", "Quarantine", ("prepare", "act")),
            ("restore", "Restore", ("prepare", "act")),
        )
        for method in methods
    },
}


def _service_modules() -> Iterator[ModuleType]:
    for name in SERVICE_PACKAGES:
        package = importlib.import_module(name)
        yield package
        for info in pkgutil.walk_packages(package.__path__, prefix=f"{name}."):
            yield importlib.import_module(info.name)


def _public_callables(module: ModuleType) -> Iterator[tuple[str, Any]]:
    for name, obj in vars(module).items():
        if name.startswith("_") or getattr(obj, "__module__", None) != module.__name__:
            continue
        if inspect.isfunction(obj):
            yield name, obj
        elif inspect.isclass(obj):
            for attr, member in vars(obj).items():
                if (attr.startswith("_") and attr != "__call__") or attr in SERIALISERS:
                    continue
                if isinstance(member, staticmethod | classmethod):
                    member = member.__func__
                if inspect.isfunction(member):
                    yield f"{name}.{attr}", member


def _holds_dict(hint: Any) -> bool:
    """``dict[str, Any]`` itself, or a list, tuple, set, union or mapping holding it."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is dict and args and args[1] is Any:
        return True
    return any(_holds_dict(a) for a in args)


def _dict_returns() -> dict[str, str]:
    found = {}
    for module in _service_modules():
        for qualname, fn in _public_callables(module):
            try:
                hints = typing.get_type_hints(fn)
            except NameError:  # an annotation only importable under TYPE_CHECKING
                hints = typing.get_type_hints(fn, vars(module) | _type_checking_names(module))
            if "return" in hints and _holds_dict(hints["return"]):
                found[f"{module.__name__}:{qualname}"] = str(hints["return"])
    return found


def _type_checking_names(module: ModuleType) -> dict[str, Any]:
    """The names a module imports under ``if TYPE_CHECKING:``, imported now."""
    names: dict[str, Any] = {}
    tree = ast.parse(inspect.getsource(module))
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            for stmt in node.body:
                if isinstance(stmt, ast.ImportFrom) and stmt.module:
                    source = importlib.import_module(stmt.module)
                    for alias in stmt.names:
                        names[alias.asname or alias.name] = getattr(source, alias.name)
    return names


def test_services_return_typed_results_not_dictionaries() -> None:
    found = _dict_returns()
    unexpected = {k: v for k, v in found.items() if k not in ALLOWED}
    assert not unexpected, (
        "these service functions return dictionaries; return a frozen dataclass (or add "
        f"the function to ALLOWED with the reason): {unexpected}"
    )


def test_every_allowed_dictionary_is_still_returned() -> None:
    gone = sorted(set(ALLOWED) - set(_dict_returns()))
    assert not gone, f"no longer return a dictionary; remove them from ALLOWED: {gone}"


def test_the_guard_sees_a_dictionary_in_a_container() -> None:
    assert _holds_dict(dict[str, Any]) and _holds_dict(list[dict[str, Any]])
    assert _holds_dict(tuple[int, dict[str, Any]] | None)
    assert not _holds_dict(dict[str, int]) and not _holds_dict(list[str])
    assert corral.__name__ == "corral"
