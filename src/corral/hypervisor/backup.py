"""A full backup of a running VM through libvirt's backup API (push mode), as a restore point.

``virDomainBackupBegin`` copies each disk's content as of the moment it starts (the guest keeps
running and writing) into a new qcow2 file that libvirt creates; a checkpoint created with it
atomically marks where the next incremental starts. Facts this relies on, measured on these
machines (../shared/notes/backup-ha.md):

* only allocated clusters are copied; the target is created root-owned, mode 0600;
* the job's end is seen by polling the job stats; but QEMU closes the target a few ms AFTER the
  job reports completion, and reading it before then gave a corrupt image. So the file counts
  as a restore point only once ``qemu-img info`` WITHOUT ``-U`` can lock it, and a
  ``qemu-img check`` is clean;
* there is no bandwidth element in the backup XML: the copy is throttled with
  ``blockJobSetSpeed`` right after the start (the plan's rate);
* an aborted push job deletes its partial target;
* backupBegin has no quiesce flag: an application-consistent point is fsFreeze (the guest
  agent), backupBegin (which makes the checkpoint at once), fsThaw; without an agent libvirt
  answers at once (code 74 "not configured", 86 "not connected").

XML goes through lxml only.
"""

from __future__ import annotations

import contextlib
import itertools
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, NoReturn

from lxml import etree

from corral.errors import HypervisorError
from corral.hypervisor import xmlsafe

POLL_S = 0.05
RELEASE_TIMEOUT_S = 30.0


@dataclass(frozen=True, slots=True)
class Consistency:
    """What a point's disks are: ``application`` (the guest's filesystems were frozen by its
    agent, or it was shut down cleanly) or ``crash`` (as after a power cut); ``note`` says why."""

    level: str
    note: str | None = None


CRASH = Consistency("crash")
LOST = Consistency("crash", "libvirtd died during the backup: a freeze, if any, is not known")
THAW_TRIES = 3


@dataclass(frozen=True, slots=True)
class DiskCopy:
    disk: str  # the guest's target name, e.g. vda
    path: Path  # the restore point's file
    bytes_copied: int


@dataclass(frozen=True, slots=True)
class FullBackup:
    checkpoint: str
    disks: tuple[DiskCopy, ...]
    seconds: float
    consistency: Consistency = CRASH


def backup_xml(targets: Sequence[tuple[str, Path]], since: str | None = None) -> str:
    """``<domainbackup>`` pushing each named disk to a new qcow2 file; with ``since`` (a
    checkpoint), only what changed after it."""
    root = etree.Element("domainbackup")
    if since is not None:
        etree.SubElement(root, "incremental").text = since
    disks = etree.SubElement(root, "disks")
    for name, path in targets:
        disk = etree.SubElement(disks, "disk", name=name, type="file")
        etree.SubElement(disk, "driver", type="qcow2")
        etree.SubElement(disk, "target", file=str(path))
    return etree.tostring(root, encoding="unicode")


def checkpoint_xml(name: str) -> str:
    root = etree.Element("domaincheckpoint")
    etree.SubElement(root, "name").text = name
    return etree.tostring(root, encoding="unicode")


@contextlib.contextmanager
def frozen(dom: Any, wanted: bool) -> Iterator[Consistency]:
    """The guest's filesystems frozen through its agent for the block inside, when ``wanted``
    and the agent answers; thawed on every way out. Without an agent the block runs all the
    same and the result says crash-consistent, and why (libvirt's one sentence)."""
    import libvirt

    if not wanted:
        yield CRASH
        return
    try:
        count = dom.fsFreeze()
    except libvirt.libvirtError as exc:
        yield Consistency("crash", f"no filesystem freeze: {exc.get_error_message()}")
        return
    try:
        if count:
            yield Consistency("application", f"guest agent froze {count} filesystem(s)")
        else:
            yield Consistency("crash", "the guest agent froze no filesystem")
    finally:
        _thaw(dom)


def _thaw(dom: Any) -> None:
    import libvirt

    for attempt in range(THAW_TRIES):
        try:
            dom.fsThaw()
            return
        except libvirt.libvirtError as exc:
            if not _alive(dom):  # the next connection thaws (the executor, on reconnecting)
                raise DaemonLost(f"lost libvirtd before thawing {_name(dom)}: {exc}") from None
            if attempt == THAW_TRIES - 1:
                raise HypervisorError(
                    f"cannot thaw the filesystems of {_name(dom)}: {exc.get_error_message()}; "
                    f"run 'virsh domfsthaw {_name(dom)}' on its host now."
                ) from None
            time.sleep(0.2)


def full_backup(
    dom: Any,
    targets: Sequence[tuple[str, Path]],
    checkpoint: str,
    *,
    mib_s: int | None = None,
    since: str | None = None,
    timeout_s: float = 600.0,
    quiesce: bool = False,
) -> FullBackup:
    """Back up ``targets`` (disk name, new file) of running ``dom`` and wait until each file is a
    closed, consistent qcow2; HypervisorError (nothing kept) when the job fails or times out.

    ``since`` names the checkpoint of an earlier backup: then only the clusters written after
    it are copied (an incremental; its file's backing file is the LIVE disk, so restoring it
    means rebasing it onto the earlier restore point: ``flatten``)."""
    import libvirt

    for _, path in targets:
        if path.exists():
            raise HypervisorError(f"backup target {path} exists; a restore point is never reused.")
    started = time.monotonic()
    try:
        with frozen(dom, quiesce) as consistency:  # frozen only while the checkpoint is made
            dom.backupBegin(backup_xml(targets, since), checkpoint_xml(checkpoint), 0)
    except libvirt.libvirtError as exc:
        if since is not None and exc.get_error_code() in BROKEN_CHAIN:
            raise _ChainBroken(f"incremental since {since} impossible: {exc}") from None
        if not _alive(dom):  # the daemon died before answering: the job may run all the same
            raise DaemonLost(f"lost libvirtd while starting the backup of {_name(dom)}") from None
        raise HypervisorError(f"libvirt refused the backup of {dom.name()}: {exc}.") from None
    try:
        if mib_s:
            _throttle(dom, [name for name, _ in targets], mib_s)
    except libvirt.libvirtError as exc:
        _raise_lost(dom, exc)
    done = _finish(dom, targets, checkpoint, started, timeout_s)
    return replace(done, consistency=consistency)


def thaw_quietly(dom: Any) -> None:
    """Thaw a guest a lost connection may have left frozen; no agent, nothing frozen: fine."""
    import libvirt

    with contextlib.suppress(libvirt.libvirtError):
        dom.fsThaw()


def resume(
    dom: Any, targets: Sequence[tuple[str, Path]], checkpoint: str, *, timeout_s: float = 600.0
) -> FullBackup:
    """Follow, on a new connection, a backup job started before libvirtd died: libvirt
    reattaches to a job QEMU still runs. HypervisorError when the running job (if any) is not
    the one writing ``targets``: its outcome cannot be known, so the backup must be redone."""
    if not _job_writes(dom, targets):
        raise JobGone(
            f"the backup job of {dom.name()} ended while libvirtd was down; "
            "its outcome is unknown, so it is redone."
        )
    done = _finish(dom, targets, checkpoint, time.monotonic(), timeout_s)
    return replace(done, consistency=LOST)


def _job_writes(dom: Any, targets: Sequence[tuple[str, Path]]) -> bool:
    """Whether the domain's running backup job is the one pushing into ``targets``."""
    import libvirt

    try:
        running = dom.backupGetXMLDesc(0)
    except libvirt.libvirtError:
        return False  # no backup job
    root = xmlsafe.parse(running, "backup XML")
    files = {str(t.get("file")) for t in root.iterfind("./disks/disk/target")}
    return {str(path) for _, path in targets} <= files


class JobGone(HypervisorError):
    """The job libvirtd lost ended before a new connection could follow it: redo it."""


class DaemonLost(HypervisorError):
    """The connection to libvirtd broke while a backup job ran (the daemon died or restarted).

    QEMU keeps running the job; ``resume`` on a new connection follows it to its end."""


def _alive(dom: Any) -> bool:
    try:
        return bool(dom.connect().isAlive())
    except Exception:  # a broken connection may fail any call
        return False


def _raise_lost(dom: Any, exc: Exception) -> NoReturn:
    if not _alive(dom):
        raise DaemonLost(f"lost libvirtd during the backup of {_name(dom)}: {exc}") from None
    raise HypervisorError(f"the backup of {_name(dom)} failed: {exc}.") from None


def _name(dom: Any) -> str:
    try:
        return str(dom.name())  # answered from the handle, even on a dead connection
    except Exception:
        return "the VM"


def _finish(
    dom: Any, targets: Sequence[tuple[str, Path]], checkpoint: str, started: float,
    timeout_s: float,
) -> FullBackup:  # fmt: skip
    """Wait for the job's end, then for each file to be a closed, consistent qcow2."""
    import libvirt

    try:
        stats = _wait_done(dom, started + timeout_s)
    except libvirt.libvirtError as exc:
        _raise_lost(dom, exc)
    if stats.get("type") != libvirt.VIR_DOMAIN_JOB_COMPLETED:
        _discard(targets)
        raise HypervisorError(f"the backup of {dom.name()} failed ({stats}); nothing was kept.")
    copies = []
    for name, path in targets:
        _wait_released(path)
        _check(path)
        copies.append(DiskCopy(name, path, path.stat().st_size))
    return FullBackup(checkpoint, tuple(copies), time.monotonic() - started)


@dataclass(frozen=True, slots=True)
class RestorePoint:
    """A backup as taken: ``incremental`` False when it is a full one, and when a full was taken
    although an incremental was asked for, ``fallback`` says why."""

    backup: FullBackup
    incremental: bool
    fallback: str | None = None


#: libvirt's answers to an incremental whose starting checkpoint cannot serve: the bitmap was
#: lost (a crash, a move to another host) or the checkpoint is gone.
BROKEN_CHAIN = frozenset({109, 103})  # CHECKPOINT_INCONSISTENT, NO_DOMAIN_CHECKPOINT


def back_up(
    dom: Any,
    targets: Sequence[tuple[str, Path]],
    checkpoint: str,
    *,
    since: str | None = None,
    mib_s: int | None = None,
    quiesce: bool = False,
) -> RestorePoint:
    """An incremental since ``since`` when its bitmap chain holds, else a full one with the reason.

    On a broken chain every existing checkpoint is dropped (metadata only: their bitmaps are
    gone or useless), so the new full backup's checkpoint starts the next chain.
    """
    if since is None:
        taken = full_backup(dom, targets, checkpoint, mib_s=mib_s, quiesce=quiesce)
        return RestorePoint(taken, False)
    try:
        taken = full_backup(dom, targets, checkpoint, mib_s=mib_s, since=since, quiesce=quiesce)
        return RestorePoint(taken, True)
    except _ChainBroken as broken:
        for old in dom.listAllCheckpoints(0):
            old.delete(_metadata_only())
        taken = full_backup(dom, targets, checkpoint, mib_s=mib_s, quiesce=quiesce)
        return RestorePoint(taken, False, fallback=broken.reason)


class _ChainBroken(HypervisorError):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _metadata_only() -> int:
    import libvirt

    flag: int = libvirt.VIR_DOMAIN_CHECKPOINT_DELETE_METADATA_ONLY
    return flag


def flatten(chain: Sequence[Path], out: Path) -> Path:
    """One standalone qcow2 from a full restore point and its incrementals (oldest first):
    each incremental is rebased onto the one before (metadata only), then the top is copied out
    with every layer merged. The chain's files are changed only in their backing-file field."""
    for older, newer in itertools.pairwise(chain):
        done = _qemu_img("rebase", "-u", "-f", "qcow2", "-F", "qcow2", "-b", str(older), str(newer))
        if done.returncode != 0:
            raise HypervisorError(f"cannot chain {newer} onto {older}: {done.stderr[:200]}")
    done = _qemu_img("convert", "-O", "qcow2", str(chain[-1]), str(out))
    if done.returncode != 0:
        raise HypervisorError(f"cannot write restored image {out}: {done.stderr[:200]}")
    return out


def _throttle(dom: Any, disks: Sequence[str], mib_s: int) -> None:
    """Limit each disk's copy to ``mib_s``; a small disk may be done before the call lands."""
    import libvirt

    for name in disks:
        try:
            dom.blockJobSetSpeed(name, mib_s, 0)
        except libvirt.libvirtError:
            # A job that copied everything is "concluded" and refuses the verb while QEMU still
            # lists it (cur == end); only a job with work left makes the refusal real.
            info = dom.blockJobInfo(name, 0)
            if info and info.get("cur", 0) < info.get("end", 0):
                raise


def _wait_done(dom: Any, deadline: float) -> dict[str, Any]:
    import libvirt

    while dom.jobStats().get("type", libvirt.VIR_DOMAIN_JOB_NONE) != libvirt.VIR_DOMAIN_JOB_NONE:
        if time.monotonic() > deadline:
            dom.abortJob()
            raise HypervisorError(f"the backup of {dom.name()} did not finish in time; aborted.")
        time.sleep(POLL_S)
    stats: dict[str, Any] = dom.jobStats(libvirt.VIR_DOMAIN_JOB_STATS_COMPLETED)
    return stats


def _wait_released(path: Path) -> None:
    """Until QEMU has closed the file: ``qemu-img info`` without -U takes the lock only then."""
    deadline = time.monotonic() + RELEASE_TIMEOUT_S
    while True:
        done = _qemu_img("info", str(path))
        if done.returncode == 0:
            return
        if time.monotonic() > deadline:
            raise HypervisorError(f"QEMU did not release backup file {path}: {done.stderr[:200]}")
        time.sleep(POLL_S)


def _check(path: Path) -> None:
    """``qemu-img check`` of a released file. ``-U`` only because an incremental's backing file
    is the live disk, which QEMU still holds; the file itself was released already."""
    done = _qemu_img("check", "-q", "-U", str(path))
    if done.returncode != 0:
        why = (done.stdout + done.stderr)[:200]
        raise HypervisorError(f"backup file {path} is not a clean qcow2: {why}")


def _discard(targets: Sequence[tuple[str, Path]]) -> None:
    for _, path in targets:
        path.unlink(missing_ok=True)


def _qemu_img(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["qemu-img", *args], capture_output=True, text=True, timeout=60, check=False
    )
