"""Tiny TCG test guests for the real-libvirtd hosts of scripts/realhosts.sh.

The guest is a Debian cloud kernel plus a busybox initramfs (built by the script) booted
directly, so no image is downloaded and a guest is up in seconds. Its /init reads
``corral.load=idle|cpu|disk`` from the kernel command line, which gives tests a workload they
know in advance and can look for in the hypervisor's counters. It powers off on the ACPI
power button, so ``virsh shutdown`` works; a guest defined with ``acpi=False`` has no power
button and so ignores a shutdown request, as a hung guest would.

Domain XML is built with lxml element by element, never by formatting strings, so a name or
path can never change the document's structure. ``GuestFactory`` (behind the ``guest_factory``
fixture of conftest.py) starts such guests and removes every trace of them afterwards.
"""

from __future__ import annotations

import subprocess
import time
import uuid as uuidlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from lxml import etree

Load = Literal["idle", "cpu", "disk"]
LOADS: tuple[Load, ...] = ("idle", "cpu", "disk")
READY_MARKER = "corral-guest: ready"
AGENT_READY_MARKER = "corral-agent: ready"  # the agent variant's qemu-ga runs, /data mounted
AGENT_CHANNEL = "org.qemu.guest_agent.0"
AGENT_INITRD = "initrd-agent.img"  # beside the shared initrd.img (scripts/realhosts.sh)
MIN_MEMORY_MIB = 80  # below this the cloud kernel does not boot (notes/libvirt.md)
TB_CACHE_MIB = 32  # keeps a TCG guest's host memory near 160-230 MiB
MIGRATION_HOST = "127.0.0.1"
RUNNING_TIMEOUT_S = 30.0


def _sub(parent: etree._Element, tag: str, text: str | None = None, **attrs: str) -> etree._Element:
    element = etree.SubElement(parent, tag, attrs)
    if text is not None:
        element.text = text
    return element


def _os(
    root: etree._Element, kernel: Path | str, initrd: Path | str, load: Load, agent: bool = False
) -> None:
    os_el = _sub(root, "os")
    _sub(os_el, "type", "hvm", arch="x86_64", machine="pc")
    _sub(os_el, "kernel", str(kernel))
    _sub(os_el, "initrd", str(initrd))
    cmdline = f"console=ttyS0 panic=-1 corral.load={load}"
    _sub(os_el, "cmdline", f"{cmdline} rdinit=/agent-init" if agent else cmdline)


def _agent_channel(devices: etree._Element) -> None:
    """The virtio-serial port QEMU's guest agent listens on; libvirt picks the socket path."""
    channel = _sub(devices, "channel", type="unix")
    _sub(channel, "source", mode="bind")
    _sub(channel, "target", type="virtio", name=AGENT_CHANNEL)


def _features(root: etree._Element, acpi: bool) -> None:
    features = _sub(root, "features")
    if acpi:
        _sub(features, "acpi")
    tcg = _sub(features, "tcg")
    _sub(tcg, "tb-cache", str(TB_CACHE_MIB), unit="MiB")


def _disk(devices: etree._Element, disk_path: Path | str, cache: str | None) -> None:
    disk = _sub(devices, "disk", type="file", device="disk")
    driver = _sub(disk, "driver", name="qemu", type="qcow2")
    if cache is not None:
        driver.set("cache", cache)
    _sub(disk, "source", file=str(disk_path))
    _sub(disk, "target", dev="vda", bus="virtio")


def _serial(devices: etree._Element, console_log: Path | str | None) -> None:
    if console_log is None:
        serial = _sub(devices, "serial", type="pty")
    else:
        serial = _sub(devices, "serial", type="file")
        _sub(serial, "source", path=str(console_log), append="on")
    _sub(serial, "target", port="0")


def _nic(devices: etree._Element, network: str | None) -> None:
    if network is None:
        # A tap of the host's choosing (vnetN), connected to nothing: interface counters work
        # and no traffic can leave the machine.
        interface = _sub(devices, "interface", type="ethernet")
    else:
        # The host's isolated bridge network from realhosts.sh (same name on every host).
        interface = _sub(devices, "interface", type="network")
        _sub(interface, "source", network=network)
    _sub(interface, "model", type="virtio")


def _devices(
    root: etree._Element,
    disk_path: Path | str | None,
    disk_cache: str | None,
    console_log: Path | str | None,
    nic: bool,
    network: str | None,
    agent: bool = False,
) -> None:
    devices = _sub(root, "devices")
    if disk_path is not None:
        _disk(devices, disk_path, disk_cache)
    if nic or network is not None:
        _nic(devices, network)
    if agent:
        _agent_channel(devices)
    _serial(devices, console_log)
    balloon = _sub(devices, "memballoon", model="virtio")
    _sub(balloon, "stats", period="2")


def guest_xml(
    name: str,
    *,
    vcpus: int = 1,
    memory_mib: int = 96,
    kernel: Path | str,
    initrd: Path | str,
    load: Load = "idle",
    disk_path: Path | str | None = None,
    uuid: str | None = None,
    console_log: Path | str | None = None,
    nic: bool = False,
    network: str | None = None,
    disk_cache: str | None = None,
    acpi: bool = True,
    agent: bool = False,
) -> str:
    """Domain XML of one tiny TCG guest.

    ``console_log`` None means a pty serial console; ``nic`` adds an unconnected tap NIC,
    ``network`` a NIC on that libvirt network instead; ``acpi=False`` leaves out the power
    button (the guest then ignores ACPI shutdown requests). ``agent`` is for the guest-agent
    variant (``initrd`` must then be its initrd-agent.img): the kernel runs /agent-init first
    and the domain gets the agent's virtio-serial channel.
    """
    if load not in LOADS:
        raise ValueError(f"load must be one of {', '.join(LOADS)}, not {load!r}")
    if memory_mib < MIN_MEMORY_MIB:
        raise ValueError(f"memory_mib must be at least {MIN_MEMORY_MIB}; the guest kernel needs it")
    if vcpus < 1:
        raise ValueError("vcpus must be at least 1")
    root = etree.Element("domain", type="qemu")
    _sub(root, "name", name)
    if uuid is not None:
        _sub(root, "uuid", uuid)
    _sub(root, "memory", str(memory_mib), unit="MiB")
    _sub(root, "currentMemory", str(memory_mib), unit="MiB")
    _sub(root, "vcpu", str(vcpus))
    _os(root, kernel, initrd, load, agent)
    _features(root, acpi)
    _sub(root, "clock", offset="utc")
    _sub(root, "on_poweroff", "destroy")
    _sub(root, "on_reboot", "restart")
    _sub(root, "on_crash", "destroy")
    _devices(root, disk_path, disk_cache, console_log, nic, network, agent)
    return etree.tostring(root, encoding="unicode", pretty_print=True)


def make_disk(path: Path | str, size_mib: int = 32) -> Path:
    """Create an empty qcow2 image with qemu-img (the guest's /dev/vda)."""
    if not 1 <= size_mib <= 4096:
        raise ValueError("size_mib must be between 1 and 4096")
    target = Path(path)
    subprocess.run(
        ["qemu-img", "create", "-q", "-f", "qcow2", str(target), f"{size_mib}M"],
        check=True,
        capture_output=True,
        text=True,
    )
    return target


def make_ext4_disk(path: Path | str, size_mib: int = 32) -> Path:
    """A qcow2 image holding an empty ext4 filesystem (made on the host with mkfs.ext4), for
    the guest-agent variant, which mounts it at /data so that fsfreeze has something to freeze."""
    target = Path(path)
    raw = target.with_suffix(".raw")
    try:
        with raw.open("wb") as out:
            out.truncate(size_mib * 1024 * 1024)
        subprocess.run(["mkfs.ext4", "-q", "-F", str(raw)], check=True, capture_output=True)
        subprocess.run(
            ["qemu-img", "convert", "-q", "-f", "raw", "-O", "qcow2", str(raw), str(target)],
            check=True,
            capture_output=True,
        )
    finally:
        raw.unlink(missing_ok=True)
    return target


def start_dir_pool(conn: Any, name: str, path: Path) -> Any:
    """A transient directory storage pool at ``path``: gone from libvirt when destroyed."""
    path.mkdir(parents=True, exist_ok=True)
    root = etree.Element("pool", type="dir")
    _sub(root, "name", name)
    _sub(_sub(root, "target"), "path", str(path))
    return conn.storagePoolCreateXML(etree.tostring(root, encoding="unicode"), 0)


def create_volume(pool: Any, name: str, size_mib: int = 16, backing: Path | None = None) -> Path:
    """A qcow2 volume made by libvirt in ``pool``; with ``backing``, a linked-clone overlay."""
    root = etree.Element("volume")
    _sub(root, "name", name)
    _sub(root, "capacity", str(size_mib), unit="MiB")
    _sub(_sub(root, "target"), "format", type="qcow2")
    if backing is not None:
        store = _sub(root, "backingStore")
        _sub(store, "path", str(backing))
        _sub(store, "format", type="qcow2")
    vol = pool.createXML(etree.tostring(root, encoding="unicode"), 0)
    return Path(vol.path())


def remove_pool(pool: Any) -> None:
    """Delete what is left in a transient pool, then the pool itself."""
    import libvirt

    pool.refresh(0)
    for vol in pool.listAllVolumes(0):
        try:
            vol.delete(0)
        except libvirt.libvirtError as exc:  # deleted by the test meanwhile
            if exc.get_error_code() != libvirt.VIR_ERR_NO_STORAGE_VOL:
                raise
    pool.destroy()


def wait_for_console(
    path: Path | str, marker: str = READY_MARKER, timeout_s: float = 60.0
) -> float:
    """Seconds until ``marker`` appears in a file serial console log; TimeoutError if never."""
    start = time.monotonic()
    log = Path(path)
    while time.monotonic() - start < timeout_s:
        if log.exists() and marker in log.read_text(errors="replace"):
            return time.monotonic() - start
        time.sleep(0.1)
    tail = log.read_text(errors="replace")[-2000:] if log.exists() else "(no console log)"
    raise TimeoutError(f"{marker!r} not seen in {log} within {timeout_s:.0f} s; console:\n{tail}")


def migrate_live(dom: Any, dest_uri: str, *, port: int | None = None, persist: bool = True) -> None:
    """Live-migrate ``dom`` to the libvirtd at ``dest_uri`` over loopback only.

    Peer-to-peer: the source daemon connects to the destination daemon itself (both are on
    this machine), and QEMU's migration stream goes to ``tcp://127.0.0.1[:port]``; without a
    port the destination picks one from its own range (qemu.conf migration_port_min/max).
    UNSAFE because libvirt cannot tell that the disk files are shared (same machine).
    ``persist`` moves the definition too (defined on the destination, undefined at the
    source), as an administrator moving a VM would; without it the destination runs a
    transient copy and the source keeps an inactive definition.
    """
    import libvirt

    uri = f"tcp://{MIGRATION_HOST}" + (f":{port}" if port is not None else "")
    params = {libvirt.VIR_MIGRATE_PARAM_URI: uri}
    flags = libvirt.VIR_MIGRATE_LIVE | libvirt.VIR_MIGRATE_UNSAFE | libvirt.VIR_MIGRATE_PEER2PEER
    if persist:
        flags |= libvirt.VIR_MIGRATE_PERSIST_DEST | libvirt.VIR_MIGRATE_UNDEFINE_SOURCE
    dom.migrateToURI3(dest_uri, params, flags)


def run_virsh(uri: str, *args: str, timeout_s: float = 60.0) -> str:
    """Run ``virsh -c uri args...`` as an administrator would; CalledProcessError on failure."""
    done = subprocess.run(
        ["virsh", "-q", "-c", uri, *args],
        check=True,
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )
    return done.stdout


@dataclass(frozen=True)
class RealhostEnv:
    """Where the hosts are and what the guests boot."""

    uris: tuple[str, ...]
    kernel: Path
    initrd: Path
    network: str | None = None  # the isolated network every host has, for guest NICs


@dataclass
class Guest:
    """A guest the factory started; ``dom`` belongs to the host it was started on."""

    name: str
    uuid: str
    host: int
    dom: Any
    console_log: Path
    disk_path: Path | None
    started_at: float | None = None

    def wait_ready(self, timeout_s: float = 120.0) -> float:
        """Wait for /init's ready line on the serial console; seconds since the start (boot)."""
        waited = wait_for_console(self.console_log, timeout_s=timeout_s)
        return time.monotonic() - self.started_at if self.started_at is not None else waited


def agent_initrd(env: RealhostEnv) -> Path:
    """The guest-agent variant's initramfs; FileNotFoundError says how to build it."""
    path = env.initrd.with_name(AGENT_INITRD)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is missing; install qemu-guest-agent and run: bash scripts/realhosts.sh up"
        )
    return path


@dataclass
class GuestFactory:
    """Defines and starts guests with unique names; ``cleanup`` removes every trace of them."""

    env: RealhostEnv
    conns: list[Any]
    workdir: Path
    guests: list[Guest] = field(default_factory=list)

    def __call__(
        self,
        host: int = 0,
        *,
        load: Load = "idle",
        vcpus: int = 1,
        memory_mib: int = 96,
        disk_mib: int | None = None,
        nic: bool = False,
        network: str | None = None,
        start: bool = True,
        wait_ready: bool = False,
        acpi: bool = True,
        disk: Path | None = None,
        agent: bool = False,
    ) -> Guest:
        """A new guest; ``disk`` attaches an existing image (a pool volume, say) instead.

        ``agent`` boots the guest-agent variant: a real qemu-ga on its channel, and the ext4
        filesystem of its disk (made here when ``disk_mib`` is given) mounted at /data."""
        name = f"corral-t-{uuidlib.uuid4().hex[:10]}"
        guest_uuid = str(uuidlib.uuid4())
        if disk is None and disk_mib:
            make = make_ext4_disk if agent else make_disk
            disk = make(self.workdir / f"{name}.qcow2", disk_mib)
        console = self.workdir / f"{name}.console.log"
        xml = guest_xml(
            name,
            vcpus=vcpus,
            memory_mib=memory_mib,
            kernel=self.env.kernel,
            initrd=agent_initrd(self.env) if agent else self.env.initrd,
            load=load,
            disk_path=disk,
            uuid=guest_uuid,
            console_log=console,
            nic=nic,
            network=network,
            acpi=acpi,
            agent=agent,
        )
        dom = self.conns[host].defineXML(xml)
        guest = Guest(name, guest_uuid, host, dom, console, disk)
        self.guests.append(guest)
        if start:
            guest.started_at = time.monotonic()
            dom.create()
            _wait_running(dom)
        if start and wait_ready:
            guest.wait_ready()
        return guest

    def cleanup(self) -> None:
        """Destroy and undefine each guest on whichever host holds it now, then delete disks."""
        errors: list[str] = []
        for guest in self.guests:
            for conn in self.conns:
                try:
                    _remove_domain(conn, guest.uuid)
                except Exception as exc:
                    errors.append(f"{guest.name} on {conn.getURI()}: {exc}")
            if guest.disk_path is not None:
                guest.disk_path.unlink(missing_ok=True)
        self.guests.clear()
        if errors:
            raise RuntimeError("guest cleanup failed: " + "; ".join(errors))


def _wait_running(dom: Any, timeout_s: float = RUNNING_TIMEOUT_S) -> None:
    import libvirt

    deadline = time.monotonic() + timeout_s
    while dom.state()[0] != libvirt.VIR_DOMAIN_RUNNING:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{dom.name()} not running after {timeout_s:.0f} s")
        time.sleep(0.1)


def _remove_domain(conn: Any, guest_uuid: str) -> None:
    import libvirt

    # A listing, not lookupByUUIDString: a miss there is normal here, and libvirt would print it.
    for dom in conn.listAllDomains():
        if dom.UUIDString() != guest_uuid:
            continue
        if dom.isActive():
            try:
                dom.destroy()
            except libvirt.libvirtError as exc:  # it stopped on its own after the check
                if exc.get_error_code() != libvirt.VIR_ERR_OPERATION_INVALID:
                    raise
        if dom.isPersistent():
            dom.undefineFlags(
                libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA
                | libvirt.VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA
                | libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE
                | libvirt.VIR_DOMAIN_UNDEFINE_NVRAM
            )


def agent_command(dom: Any, execute: str, timeout_s: int = 20, **arguments: Any) -> Any:
    """One command to the guest's qemu-ga through libvirt; its ``return`` value."""
    import json

    import libvirt_qemu

    request: dict[str, Any] = {"execute": execute}
    if arguments:
        request["arguments"] = arguments
    answer = libvirt_qemu.qemuAgentCommand(dom, json.dumps(request), timeout_s, 0)
    return json.loads(answer)["return"]


def wait_for_agent(dom: Any, timeout_s: float = 60.0) -> None:
    """Until libvirt sees the guest's agent connected and it answers a ping."""
    import libvirt

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            agent_command(dom, "guest-ping", timeout_s=5)
            return
        except libvirt.libvirtError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def agent_write_file(dom: Any, path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` inside the guest through its agent, flushed."""
    import base64

    handle = agent_command(dom, "guest-file-open", path=path, mode="w")
    try:
        for at in range(0, len(data), 48 * 1024):
            chunk = base64.b64encode(data[at : at + 48 * 1024]).decode()
            agent_command(dom, "guest-file-write", handle=handle, **{"buf-b64": chunk})
        agent_command(dom, "guest-file-flush", handle=handle)
    finally:
        agent_command(dom, "guest-file-close", handle=handle)


def agent_read_file(dom: Any, path: str) -> bytes:
    """The content of ``path`` inside the guest, read through its agent."""
    import base64

    handle = agent_command(dom, "guest-file-open", path=path, mode="r")
    out = b""
    try:
        while True:
            part = agent_command(dom, "guest-file-read", handle=handle, count=48 * 1024)
            out += base64.b64decode(part["buf-b64"])
            if part["eof"] or not part["count"]:
                return out
    finally:
        agent_command(dom, "guest-file-close", handle=handle)
