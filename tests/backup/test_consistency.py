"""Application-consistent backups: the guest's filesystems frozen through its agent around the
backup's start, thawed on every way out; without an agent, a crash-consistent point that says
why. libvirt's test driver has fsFreeze/fsThaw (a second freeze of frozen filesystems freezes
none, a thaw of thawed ones thaws none), but no backup API: the ordering is checked here, the
backups themselves on the real hosts (tests/realhost/test_backup_stopped_real.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import libvirt
import pytest

from corral.errors import HypervisorError
from corral.hypervisor.backup import frozen, full_backup


@pytest.fixture
def dom(tmp_path: Path) -> Iterator[Any]:
    """A running domain of the test driver, with a private state (its own node file)."""
    node = tmp_path / "node.xml"
    node.write_text(
        "<node><domain type='test'><name>app</name><memory>1024</memory>"
        "<os><type>hvm</type></os></domain></node>"
    )
    conn = libvirt.open(f"test://{node}")
    yield conn.lookupByName("app")
    conn.close()


def test_the_filesystems_are_frozen_inside_and_thawed_after(dom: Any) -> None:
    with frozen(dom, True) as consistency:
        assert dom.fsFreeze() == 0  # already frozen: nothing more to freeze
    assert consistency.level == "application"
    assert consistency.note is not None and "froze" in consistency.note
    assert dom.fsThaw() == 0  # nothing left frozen


def test_a_failure_inside_still_thaws(dom: Any) -> None:
    with pytest.raises(RuntimeError), frozen(dom, True):
        raise RuntimeError("the backup failed")
    assert dom.fsThaw() == 0


def test_a_failed_backup_start_thaws_the_guest(dom: Any, tmp_path: Path) -> None:
    """The test driver refuses backupBegin after the freeze: the guest is thawed all the same."""
    with pytest.raises(HypervisorError, match="refused the backup"):
        full_backup(dom, [("vda", tmp_path / "vda.qcow2")], "cp1", quiesce=True)
    assert dom.fsThaw() == 0


def test_no_freeze_when_the_policy_asks_none(dom: Any) -> None:
    with frozen(dom, False) as consistency:
        assert dom.fsFreeze() > 0  # it was not frozen
    dom.fsThaw()
    assert (consistency.level, consistency.note) == ("crash", None)


def test_without_an_agent_the_point_is_crash_consistent_and_says_why(dom: Any) -> None:
    dom.destroy()  # the test driver's freeze then fails as an absent agent's does
    with frozen(dom, True) as consistency:
        pass
    assert consistency.level == "crash"
    assert consistency.note is not None and "no filesystem freeze" in consistency.note
