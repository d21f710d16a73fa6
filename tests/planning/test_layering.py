"""The planning engines stay pure: they never import the API, the CLI or the store."""

from __future__ import annotations

import ast
from pathlib import Path

import corral.engines.planning as planning

FORBIDDEN = ("corral.api", "corral.cli", "corral.store", "corral.inventory", "corral.hypervisor")


def test_engines_import_no_interfaces_or_store() -> None:
    root = Path(planning.__file__).parent
    offenders = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [f"{path.name}: {n}" for n in names if n.startswith(FORBIDDEN)]
    assert offenders == []


def test_public_api_is_complete_and_importable() -> None:
    assert len(set(planning.__all__)) == len(planning.__all__)
    for name in planning.__all__:
        assert getattr(planning, name) is not None
