"""libvirt and qemu-img steps of the backup executor and of restores, one call each.

The executor and the restore service (corral.services.backup_exec, corral.services.restore)
decide; these functions act on one domain or one image. Images are written through a
temporary file, fsynced, then renamed, so a killed restore never leaves a half-written disk
under a VM's name. qemu-img runs with an argument list, never through a shell; domain XML is
changed through lxml only.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
import uuid as uuidlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lxml import etree

from corral.errors import HostUnreachableError, HypervisorError
from corral.hypervisor import xmlsafe
from corral.hypervisor.libvirt.connection import Credentials, quiet_libvirt
from corral.hypervisor.libvirt.connection import _auth as auth_callback
from corral.hypervisor.uri import HostAccess, open_uri, redact, validate_uri

QEMU_IMG_TIMEOUT_S = 3600
#: unanswered keepalive probes after which a connection is dead, and libvirt's words for it
KEEPALIVE_COUNT = 2
KEEPALIVE_LOST = "keepalive timeout"
#: what every later call on that connection says, once keepalive (or a dead daemon) closed it
CONNECTION_CLOSED = "client socket is closed"
ABORT_WAIT_S = 60.0


@dataclass(frozen=True, slots=True)
class FileDisk:
    target: str  # vda
    path: Path
    fmt: str  # qcow2, raw


def open_conn(uri: str, access: HostAccess, credentials: Credentials | None = None) -> Any:
    """A plain libvirt connection to a registered host (its URI checked against the rules),
    with the host's stored credentials when it has some."""
    import libvirt

    quiet_libvirt()  # libvirt's own stderr lines would double the one sentence Corral gives
    target = open_uri(validate_uri(uri, access), access)
    try:
        if credentials is not None:
            return libvirt.openAuth(target, auth_callback(credentials), 0)
        return libvirt.open(target)
    except libvirt.libvirtError as exc:
        why = f"cannot connect to {redact(uri)}: {exc.get_error_message()}"
        raise HypervisorError(why) from None


def find_domain(conn: Any, uuid: str) -> Any | None:
    for dom in conn.listAllDomains(0):
        if dom.UUIDString().lower() == uuid.lower():
            return dom
    return None


def inactive_xml(dom: Any) -> str:
    """The VM's definition (without secrets: no VIR_DOMAIN_XML_SECURE)."""
    import libvirt

    return str(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))


def file_disks(xml: str) -> list[FileDisk]:
    """The VM's file-backed disks (not cdroms), in the order of the definition."""
    root = xmlsafe.parse(xml, "domain XML")
    disks = []
    for disk in root.iterfind("./devices/disk[@device='disk'][@type='file']"):
        source, target = disk.find("source"), disk.find("target")
        driver = disk.find("driver")
        if source is None or target is None or source.get("file") is None:
            continue
        fmt = driver.get("type", "raw") if driver is not None else "raw"
        disks.append(FileDisk(str(target.get("dev")), Path(str(source.get("file"))), fmt))
    return disks


def as_new_vm(
    xml: str, name: str, disks: Mapping[str, Path], network: str | None = None
) -> tuple[str, str]:
    """The definition of a copy: new name, new UUID, no MAC addresses (libvirt draws new ones),
    the disks on the restored files, file consoles beside the old ones named after the copy;
    with ``network``, every NIC on that libvirt network only (a restore test's isolation)."""
    root = xmlsafe.parse(xml, "the restore point's domain XML")
    if network is not None:
        _rewire(root, network)
    root.find("name").text = name  # type: ignore[union-attr]
    new_uuid = str(uuidlib.uuid4())
    uuid_el = root.find("uuid")
    if uuid_el is None:
        uuid_el = etree.SubElement(root, "uuid")
    uuid_el.text = new_uuid
    for mac in root.iterfind("./devices/interface/mac"):
        mac.getparent().remove(mac)  # type: ignore[union-attr]
    for disk in root.iterfind("./devices/disk[@device='disk'][@type='file']"):
        target, source = disk.find("target"), disk.find("source")
        if target is not None and source is not None and target.get("dev") in disks:
            source.set("file", str(disks[str(target.get("dev"))]))
            for store in disk.findall("backingStore"):
                disk.remove(store)
    for chardev in root.iterfind(_FILE_CHARDEVS):
        chardev.set("path", str(_copy_console(chardev, name)))
    return etree.tostring(root, encoding="unicode"), new_uuid


_FILE_CHARDEVS = "./devices/*[@type='file']/source[@path]"


def _copy_console(source: etree._Element, name: str) -> Path:
    old = Path(str(source.get("path")))
    return old.with_name(f"{name}.{source.getparent().tag}.log")  # type: ignore[union-attr]


def copy_consoles(xml: str, name: str) -> list[Path]:
    """The files a copy named ``name`` (``as_new_vm``) has its file consoles write to."""
    root = xmlsafe.parse(xml, "the restore point's domain XML")
    return [_copy_console(c, name) for c in root.iterfind(_FILE_CHARDEVS)]


def _rewire(root: etree._Element, network: str) -> None:
    """Each NIC becomes a plain NIC on ``network`` (its model kept; bridge, direct, port and
    filter settings dropped), so the copy reaches nothing its original reached."""
    for nic in root.iterfind("./devices/interface"):
        model = nic.find("model")
        for child in list(nic):
            nic.remove(child)
        for attr in list(nic.attrib):
            del nic.attrib[attr]
        nic.set("type", "network")
        etree.SubElement(nic, "source", network=network)
        if model is not None:
            nic.append(model)


def isolated_network_xml(name: str, bridge: str) -> str:
    """A libvirt network with no ``<forward>`` and no address: guests on it reach each other
    only; no DHCP, no route, no NAT."""
    root = etree.Element("network")
    etree.SubElement(root, "name").text = name
    etree.SubElement(root, "bridge", name=bridge, stp="off")
    return etree.tostring(root, encoding="unicode")


@contextlib.contextmanager
def isolated_network(conn: Any, name: str, bridge: str) -> Iterator[str]:
    """A transient isolated network for the block inside; destroyed (its bridge removed) after,
    whatever happened. Transient: a daemon restart forgets it too."""
    import libvirt

    try:
        net = conn.networkCreateXML(isolated_network_xml(name, bridge))
    except libvirt.libvirtError as exc:
        raise HypervisorError(f"cannot create isolated network {name}: {exc}") from None
    try:
        yield name
    finally:
        with contextlib.suppress(libvirt.libvirtError):
            net.destroy()


def remove_network(net: Any) -> None:
    """Destroy (and undefine, if persistent) a network a restore test left behind."""
    import libvirt

    with contextlib.suppress(libvirt.libvirtError):
        if net.isActive():
            net.destroy()
    with contextlib.suppress(libvirt.libvirtError):
        if net.isPersistent():
            net.undefine()


def file_consoles(xml: str) -> list[Path]:
    """The files a domain's serial consoles write to (``<serial type='file'>``)."""
    root = xmlsafe.parse(xml, "domain XML")
    return [Path(str(s.get("path"))) for s in root.iterfind("./devices/serial/source[@path]")]


def wait_booted(
    dom: Any, *, marker: str | None, timeout_s: float, settle_s: float
) -> tuple[bool, str]:
    """Whether ``dom`` booted: it ran ``settle_s`` seconds without stopping and, with
    ``marker``, one of its file consoles shows it; (False, why) at ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    consoles = file_consoles(str(dom.XMLDesc(0)))
    if marker is not None and not consoles:
        return False, "the boot marker needs a file console, and the VM has none"
    since = time.monotonic()
    while time.monotonic() < deadline:
        if not dom.isActive():
            return False, "the restored VM stopped while booting"
        seen = marker is None or any(_shows(c, marker) for c in consoles)
        if seen and time.monotonic() - since >= settle_s:
            return True, "booted" if marker is None else f"booted: console shows {marker!r}"
        time.sleep(0.2)
    return False, f"no boot within {timeout_s:g} s" + (f" (no {marker!r})" if marker else "")


def _shows(console: Path, marker: str) -> bool:
    try:
        return marker in console.read_text(errors="replace")
    except OSError:
        return False


def remove_vm(dom: Any) -> None:
    """Destroy and undefine a throwaway VM (a restore test's), its checkpoints' metadata too."""
    import libvirt

    with contextlib.suppress(libvirt.libvirtError):
        if dom.isActive():
            dom.destroy()
    with contextlib.suppress(libvirt.libvirtError):
        try:
            dom.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA)
        except libvirt.libvirtError:
            if not dom.isPersistent():
                return  # gone (a transient VM, undefined at its destroy)
            dom.undefine()  # a driver without checkpoints (the test driver) takes no flag


def partial(out: Path) -> Path:
    """Where ``write_image`` writes ``out`` before renaming it into place."""
    return out.with_name(f".{out.name}.restoring")


def write_image(top: Path, out: Path) -> None:
    """A standalone qcow2 at ``out`` from ``top`` and its backing chain, all layers merged."""
    tmp = partial(out)
    tmp.unlink(missing_ok=True)
    done = qemu_img("convert", "-O", "qcow2", str(top), str(tmp))
    if done.returncode != 0:
        tmp.unlink(missing_ok=True)
        raise HypervisorError(f"cannot write restored image {out}: {done.stderr.strip()[:200]}")
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    tmp.rename(out)


def rebase(image: Path, backing: str) -> None:
    """Point ``image`` at ``backing`` (relative to the image's folder); metadata only."""
    done = qemu_img("rebase", "-u", "-f", "qcow2", "-F", "qcow2", "-b", backing, str(image))
    if done.returncode != 0:
        raise HypervisorError(f"cannot chain {image} onto {backing}: {done.stderr.strip()[:200]}")


def backup_running(dom: Any) -> bool:
    import libvirt

    for _ in range(50):  # "backup job data missing" while libvirt sets a job up: ask again
        try:
            stats = dom.jobStats()
            break
        except libvirt.libvirtError:
            time.sleep(0.1)
    else:
        stats = dom.jobStats()
    return bool(
        stats.get("type", libvirt.VIR_DOMAIN_JOB_NONE) != libvirt.VIR_DOMAIN_JOB_NONE
        and stats.get("operation") == libvirt.VIR_DOMAIN_JOB_OPERATION_BACKUP
    )


def abort_backup(dom: Any) -> None:
    """End a backup job left running by a process that died; its partial target goes too."""
    import libvirt

    try:
        dom.abortJob()
    except libvirt.libvirtError as exc:
        if backup_running(dom):
            why = f"cannot abort the old backup job of {dom.name()}: {exc}"
            raise HypervisorError(why) from None
    deadline = time.monotonic() + ABORT_WAIT_S
    while backup_running(dom):
        if time.monotonic() > deadline:
            raise HypervisorError(f"the old backup job of {dom.name()} does not end; try later.")
        time.sleep(0.1)


def checkpoints(dom: Any) -> list[str]:
    return [c.getName() for c in dom.listAllCheckpoints(0)]


def drop_checkpoints(dom: Any, keep: frozenset[str] = frozenset()) -> list[str]:
    """Delete every checkpoint but ``keep`` (with its bitmap; metadata only when the bitmap is
    already gone). Newest first, so no delete has to merge into a dropped one."""
    import libvirt

    dropped = []
    for cp in reversed(dom.listAllCheckpoints(libvirt.VIR_DOMAIN_CHECKPOINT_LIST_TOPOLOGICAL)):
        if cp.getName() in keep:
            continue
        try:
            cp.delete(0)
        except libvirt.libvirtError:
            cp.delete(libvirt.VIR_DOMAIN_CHECKPOINT_DELETE_METADATA_ONLY)
        dropped.append(cp.getName())
    if dropped and not dom.isActive():  # libvirt deletes no bitmap of a stopped VM's disks
        from corral.hypervisor.backup_offline import remove_bitmaps

        qcow2 = [d.path for d in file_disks(inactive_xml(dom)) if d.fmt == "qcow2"]
        remove_bitmaps(qcow2, dropped)
    return dropped


def stop(dom: Any) -> bool:
    """Power the VM off at once (a restore in place overwrites its disks); True if it ran."""
    import libvirt

    if not dom.isActive():
        return False
    try:
        dom.destroy()
    except libvirt.libvirtError as exc:
        if dom.isActive():
            raise HypervisorError(f"cannot stop {dom.name()}: {exc}") from None
    return True


def qemu_img(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["qemu-img", *args],
        capture_output=True,
        text=True,
        timeout=QEMU_IMG_TIMEOUT_S,
        check=False,
    )


def drop_checkpoints_metadata(dom: Any) -> None:
    """Forget every checkpoint of a VM whose disks were replaced (their bitmaps are gone)."""
    import libvirt

    for cp in dom.listAllCheckpoints(0):
        cp.delete(libvirt.VIR_DOMAIN_CHECKPOINT_DELETE_METADATA_ONLY)


@contextlib.contextmanager
def translated(what: str) -> Iterator[None]:
    """libvirt's errors inside become one HypervisorError sentence naming ``what`` (a host
    that stopped answering, HostUnreachableError)."""
    import libvirt

    try:
        yield
    except libvirt.libvirtError as exc:
        message = exc.get_error_message() or ""
        if KEEPALIVE_LOST in message or CONNECTION_CLOSED in message:
            raise HostUnreachableError(
                f"{what} failed: the host stopped answering (no reply to libvirt's keepalive "
                "within the host timeout, or the connection to it was lost); nothing more was "
                "done on it."
            ) from None
        raise HypervisorError(f"{what} failed: {message}") from None


def keep_alive(conn: Any, timeout_s: float) -> None:
    """libvirt's keepalive on ``conn`` (its event loop must run): a call the host stops
    answering fails after about ``timeout_s`` instead of waiting as long as the daemon is
    frozen. A connection without keepalive (the test driver's) is left as it is."""
    import libvirt

    interval = max(1, round(timeout_s / (KEEPALIVE_COUNT + 1)))
    with contextlib.suppress(libvirt.libvirtError):
        conn.setKeepAlive(interval, KEEPALIVE_COUNT)
