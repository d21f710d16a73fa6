"""Import direction of reports and reclamation, lazy imports included (read from the source).

Reports may read reclamation cases; reclamation never imports reports (it used
to import the report's row conversion while the report lazily imported the
reclamation views). The HTML rendering reads nothing but its ReportData.
"""

from __future__ import annotations

import ast
from pathlib import Path

import corral

SRC = Path(corral.__file__).resolve().parent


def imports(path: Path) -> set[str]:
    """Every module a file imports, at the top or inside a function."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def package_imports(package: str) -> dict[str, set[str]]:
    return {str(p.relative_to(SRC)): imports(p) for p in sorted((SRC / package).rglob("*.py"))}


def test_reclamation_never_imports_reports() -> None:
    offending = {
        f: sorted(i for i in found if i.startswith("corral.reports"))
        for f, found in package_imports("reclaim").items()
    }
    assert {f: i for f, i in offending.items() if i} == {}
    assert package_imports("reclaim"), "no reclamation module was read"


def test_html_rendering_reads_only_report_data() -> None:
    rendering = imports(SRC / "reports" / "html.py")
    reads = ("sqlalchemy", "corral.store", "corral.inventory", "corral.metrics", "corral.reclaim")
    assert sorted(i for i in rendering if i.startswith(reads)) == []
    assert "corral.reports.collect" in rendering


def test_services_records_import_no_interface_or_workflow() -> None:
    """The inventory-to-records conversion sits below reports and reclamation."""
    found = imports(SRC / "services" / "records.py")
    layers = ("corral.reports", "corral.reclaim", "corral.cli", "corral.api", "corral.services.")
    assert sorted(i for i in found if i.startswith(layers)) == []
