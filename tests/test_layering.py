"""Which way the imports go, over the whole package (lazy imports inside functions included).

The layers and what each may import are data (LAYERS, MAY_IMPORT); every Corral
import of every module is read with ``ast`` and checked against them. Imports
within one layer are allowed. KNOWN_VIOLATIONS lists today's exceptions: it may
only shrink, and an entry that no longer occurs fails the test so it is removed.
"""

from __future__ import annotations

import ast
from pathlib import Path

import corral

#: Module prefix -> layer; the longest matching prefix wins.
LAYERS: dict[str, str] = {
    "corral": "domain",  # the package itself (version, nothing else)
    "corral.domain": "domain",
    "corral.errors": "domain",
    "corral.config": "domain",
    "corral.engines": "engines",
    "corral.hypervisor": "adapters",
    "corral.store": "adapters",
    "corral.metrics.store": "adapters",
    "corral.notify": "adapters",
    "corral.security": "adapters",
    "corral.services": "services",
    "corral.inventory": "services",
    "corral.reclaim": "services",
    "corral.reports": "services",
    "corral.metrics": "services",  # collector, replay, rates; its store is an adapter
    "corral.cli": "interfaces",
    "corral.api": "interfaces",
    "corral.demo": "interfaces",
    "corral.web": "interfaces",
    "corral.__main__": "interfaces",
}

MAY_IMPORT: dict[str, frozenset[str]] = {
    "domain": frozenset({"domain"}),
    "engines": frozenset({"domain", "engines"}),
    "adapters": frozenset({"domain", "adapters"}),
    "services": frozenset({"domain", "engines", "adapters", "services"}),
    "interfaces": frozenset({"domain", "services", "interfaces"}),
}

#: (importing module, imported module) pairs that break the table today. Interfaces that
#: still reach past the services into engines or adapters; each goes when a service
#: takes over (the cost/sprawl service, the metrics service, the API's services).
KNOWN_VIOLATIONS: frozenset[tuple[str, str]] = frozenset(
    {
        ("corral.api.guard", "corral.security.token_store"),
        ("corral.cli.metrics", "corral.hypervisor.uri"),
        ("corral.api.app", "corral.security.token_store"),
        ("corral.api.deps", "corral.security.token_store"),
        ("corral.cli.context", "corral.engines.costing"),
        ("corral.cli.context", "corral.security.token_store"),
        ("corral.cli.metrics", "corral.hypervisor.stats"),
        ("corral.cli.metrics", "corral.metrics.store"),
        ("corral.cli.reclaim", "corral.engines.reclaim"),
        ("corral.demo.metrics", "corral.store"),
        ("corral.demo.nodefile", "corral.hypervisor.domxml"),
        ("corral.demo.reclaim", "corral.engines.reclaim"),
        ("corral.demo.reclaim", "corral.engines.sprawl.analysis"),
        ("corral.demo.reclaim", "corral.engines.sprawl.model"),
        ("corral.demo.run", "corral.store"),
    }
)

ROOT = Path(corral.__file__).parent


def layer_of(module: str) -> str | None:
    best = max(
        (p for p in LAYERS if module == p or module.startswith(p + ".")), key=len, default=None
    )
    return LAYERS[best] if best else None


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def corral_imports(path: Path, name: str) -> set[str]:
    """Every ``corral…`` module ``path`` (module ``name``) imports, at top level or lazily."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the package
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                found.add(".".join(base + ([node.module] if node.module else [])))
            elif node.module:
                found.add(node.module)
    return {m for m in found if m == "corral" or m.startswith("corral.")}


def violations(modules: dict[str, Path] | None = None) -> set[tuple[str, str]]:
    """(importer, imported) pairs against MAY_IMPORT, over the package or ``modules``."""
    if modules is None:
        modules = {module_name(p): p for p in sorted(ROOT.rglob("*.py"))}
    out: set[tuple[str, str]] = set()
    for importer, path in modules.items():
        source = layer_of(importer)
        assert source is not None, f"{importer} is in no layer; add it to LAYERS"
        for imported in corral_imports(path, importer):
            target = layer_of(imported)
            assert target is not None, f"{imported} is in no layer; add it to LAYERS"
            if target not in MAY_IMPORT[source]:
                out.add((importer, imported))
    return out


def test_every_import_follows_the_layers() -> None:
    new = sorted(violations() - KNOWN_VIOLATIONS)
    assert new == [], "imports against the layer table (see MAY_IMPORT):\n" + "\n".join(
        f"  {a} -> {b}" for a, b in new
    )


def test_the_known_violations_only_shrink() -> None:
    gone = sorted(KNOWN_VIOLATIONS - violations())
    assert gone == [], f"fixed, remove from KNOWN_VIOLATIONS: {gone}"


def test_no_known_violation_outside_the_interfaces() -> None:
    """Domain, engines, adapters and services are clean; only interfaces still lean past."""
    assert {layer_of(a) for a, _ in KNOWN_VIOLATIONS} <= {"interfaces"}


def test_the_checker_sees_lazy_and_relative_imports(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    lines = ["import corral.domain", "def f():", "    from corral.cli import main"]
    probe.write_text("\n".join([*lines, "    from ..store import db", ""]))
    name = "corral.engines.planning.probe"
    assert corral_imports(probe, name) == {"corral.domain", "corral.cli", "corral.engines.store"}
    found = violations({name: probe, "corral.services.probe": probe})
    assert found == {(name, "corral.cli"), ("corral.services.probe", "corral.cli")}


def test_planning_engines_public_api_is_complete() -> None:
    import corral.engines.planning as planning

    assert len(set(planning.__all__)) == len(planning.__all__)
    for name in planning.__all__:
        assert getattr(planning, name) is not None
