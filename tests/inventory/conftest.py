"""Fixtures for the inventory tests: both databases, a settable clock, node files in a tmp dir."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from lxml import etree

from tests.conftest import Clock  # noqa: F401  (re-exported for the tests here)

NODES = Path(__file__).resolve().parents[1] / "fixtures" / "nodes"
TEST_NS = "http://libvirt.org/schemas/domain/test/1.0"


@pytest.fixture
def nodes(tmp_path: Path) -> Path:
    """A private copy of the node-file fixtures (the adapter writes back into them)."""
    dest = tmp_path / "nodes"
    shutil.copytree(NODES, dest)
    return dest


def edit_node(path: Path, change: Callable[[etree._Element], None]) -> None:
    """Change a node file in place, as if the host had changed."""
    tree = etree.parse(str(path))
    change(tree.getroot())
    tree.write(str(path))


def domain(node: etree._Element, name: str) -> etree._Element:
    for d in node.iterfind("domain"):
        if d.findtext("name") == name:
            return d
    raise KeyError(name)


def set_runstate(node: etree._Element, name: str, state: int) -> None:
    domain(node, name).find(f"{{{TEST_NS}}}runstate").text = str(state)
