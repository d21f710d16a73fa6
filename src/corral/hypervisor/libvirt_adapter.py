"""The Hypervisor interface over libvirt-python.

The same code serves libvirt's test driver (node files: Corral's embedded
default) and real libvirtd hosts. The test driver keeps state per connection
and never writes it back, so for ``test:///path`` hosts the writes Corral makes
(metadata, power state, snapshots, autostart, deletions) are also written into
the node file — a test-driver host then behaves like a real one across runs.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import libvirt
from lxml import etree

from corral.domain.model import (
    Disk,
    HostFacts,
    HostInventory,
    NetworkFacts,
    OwnerMeta,
    PoolFacts,
    Snapshot,
    VMFacts,
    VMState,
    VolumeFacts,
)
from corral.errors import (
    HostUnreachableError,
    HypervisorError,
    NodeFileError,
    NotFoundError,
    ValidationError,
)
from corral.hypervisor import deadline, domxml
from corral.hypervisor.uri import (
    TRUSTED,
    HostAccess,
    is_test_file_uri,
    open_uri,
    redact,
    test_file_path,
    validate_uri,
)
from corral.hypervisor.xmlsafe import parse, to_string

log = logging.getLogger(__name__)

TEST_NS = "http://libvirt.org/schemas/domain/test/1.0"
# libvirt's node-file format has no autostart flag: Corral keeps it in its own element,
# which libvirt ignores, and applies it when it opens the file.
CORRAL_TD_NS = "urn:corral:testdriver:1"
_AUTOSTART = f"{{{CORRAL_TD_NS}}}autostart"

POWER_OFF_POLL_S = 0.2
# A paused, suspended or crashed guest cannot react to the power button.
_UNRESPONSIVE = frozenset(
    {libvirt.VIR_DOMAIN_PAUSED, libvirt.VIR_DOMAIN_PMSUSPENDED, libvirt.VIR_DOMAIN_CRASHED}
)
# Tried in order: drivers that refuse a flag (the test driver knows no NVRAM or
# checkpoints) get the next, smaller set.
_UNDEFINE_FLAGS = (
    libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA
    | libvirt.VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA
    | libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE
    | libvirt.VIR_DOMAIN_UNDEFINE_NVRAM,
    libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA | libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE,
    libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA,
    0,
)
_FLAG_REFUSED = frozenset(
    {libvirt.VIR_ERR_INVALID_ARG, libvirt.VIR_ERR_NO_SUPPORT, libvirt.VIR_ERR_ARGUMENT_UNSUPPORTED}
)
_MAX_BACKING_DEPTH = 32

_STATES = {
    libvirt.VIR_DOMAIN_NOSTATE: VMState.other,
    libvirt.VIR_DOMAIN_RUNNING: VMState.running,
    libvirt.VIR_DOMAIN_BLOCKED: VMState.running,
    libvirt.VIR_DOMAIN_PAUSED: VMState.paused,
    libvirt.VIR_DOMAIN_SHUTDOWN: VMState.running,
    libvirt.VIR_DOMAIN_SHUTOFF: VMState.shutoff,
    libvirt.VIR_DOMAIN_CRASHED: VMState.crashed,
    libvirt.VIR_DOMAIN_PMSUSPENDED: VMState.suspended,
}

_quiet_once = threading.Lock()
_quiet_done = False


def quiet_libvirt() -> None:
    """libvirt prints every error to stderr by default; Corral reports them itself."""
    global _quiet_done
    with _quiet_once:
        if not _quiet_done:
            libvirt.registerErrorHandler(lambda _ctx, _err: None, None)
            _quiet_done = True


@dataclass(frozen=True, slots=True)
class Credentials:
    username: str | None = None
    password: str | None = None

    def __repr__(self) -> str:  # never show the password
        return (
            f"Credentials(username={self.username!r}, password={'***' if self.password else None})"
        )


def _check_node_file(path: Path) -> None:
    """Raise NodeFileError (with details, for the log) when the node file cannot be used."""
    if not path.is_file():
        raise NodeFileError(f"node file {path} does not exist.")
    try:
        root = parse(path.read_bytes(), f"node file {path}")
    except ValidationError as exc:
        raise NodeFileError(exc.message) from None
    if root.tag != "node":
        raise NodeFileError(f"node file {path} must have <node> as its root element.")


#: What a reader is told when a connection fails: the reason, never libvirt's text (it
#: names files, sockets and users) and never whether a file exists. Details go to the log.
NODE_FILE_FAILED = "the node file could not be loaded"
_OPEN_REASONS = {
    libvirt.VIR_ERR_AUTH_FAILED: "authentication failed",
    libvirt.VIR_ERR_AUTH_CANCELLED: "authentication failed",
    libvirt.VIR_ERR_AUTH_UNAVAILABLE: "authentication failed",
}


def connect(
    uri: str,
    credentials: Credentials | None = None,
    timeout: float | None = None,
    *,
    access: HostAccess = TRUSTED,
) -> LibvirtHypervisor:
    """Open a connection within the timeout, or raise one clear error saying why not.

    The URI is checked against the allow-list of ``corral.hypervisor.uri`` (with the
    node-file folder of ``access``) every time, so a URI stored before a rule existed is
    refused too. The errors name a short reason only; libvirt's own text goes to the log.
    """
    quiet_libvirt()
    uri = validate_uri(uri, access)
    wait_s = access.timeout_s if timeout is None else timeout
    if is_test_file_uri(uri):
        try:
            _check_node_file(Path(test_file_path(uri)))
        except NodeFileError as exc:
            log.info("cannot open %s: %s", redact(uri), exc.message)
            raise NodeFileError(f"{NODE_FILE_FAILED}.") from None
    target = open_uri(uri, access)

    def _open() -> libvirt.virConnect:
        if credentials and (credentials.username or credentials.password):
            return libvirt.openAuth(target, _auth(credentials), 0)
        return libvirt.open(target)

    outcome = deadline.call(f"open:{uri}", _open, wait_s)
    if outcome.status is not deadline.Status.DONE:
        log.info("host %s did not answer within %.0f s", redact(uri), wait_s)
        raise HostUnreachableError(f"the host did not answer within {wait_s:g} s.")
    if isinstance(outcome.error, libvirt.libvirtError):
        raise _open_error(uri, outcome.error) from None
    if outcome.error is not None:
        raise outcome.error
    assert outcome.value is not None
    return LibvirtHypervisor(uri, outcome.value)


def _auth(creds: Credentials) -> list[Any]:
    def callback(cred_list: list[list[Any]], _data: object) -> int:
        for cred in cred_list:
            if cred[0] == libvirt.VIR_CRED_AUTHNAME:
                cred[4] = creds.username or ""
            elif cred[0] == libvirt.VIR_CRED_PASSPHRASE:
                cred[4] = creds.password or ""
        return 0

    return [[libvirt.VIR_CRED_AUTHNAME, libvirt.VIR_CRED_PASSPHRASE], callback, None]


def _open_error(uri: str, exc: libvirt.libvirtError) -> HypervisorError | NodeFileError:
    msg = (exc.get_error_message() or str(exc)).strip().rstrip(".")
    log.info("cannot open %s: %s", redact(uri), msg)
    if is_test_file_uri(uri):
        return NodeFileError(f"{NODE_FILE_FAILED}.")
    reason = _OPEN_REASONS.get(exc.get_error_code(), "the connection failed")
    return HostUnreachableError(f"{reason}.")


class LibvirtHypervisor:
    """A long-lived libvirt connection to one host."""

    def __init__(self, uri: str, conn: libvirt.virConnect) -> None:
        self.uri = uri
        self._conn = conn
        self._lock = threading.RLock()
        self._node_file = Path(test_file_path(uri)) if is_test_file_uri(uri) else None
        self._volume_cache: dict[
            str, tuple[tuple[str, tuple[str, ...], int], tuple[VolumeFacts, ...]]
        ] = {}
        self._by_path: tuple[tuple[PoolFacts, ...], dict[str, VolumeFacts]] | None = None
        self._disk_sources: dict[str, tuple[bytes, tuple[str, ...]]] = {}
        if self._node_file is not None:
            self._restore_autostart(self._node_file)

    # -- reading --------------------------------------------------------------
    def read_inventory(self, known: Mapping[str, str] | None = None) -> HostInventory:
        known = known or {}
        with self._lock:
            try:
                host = self._host_facts()
                pools = self._pools()
                vms: list[VMFacts] = []
                unchanged: list[str] = []
                for dom in self._conn.listAllDomains(0):
                    got = self._observe(dom, known, pools)
                    if isinstance(got, str):
                        unchanged.append(got)
                    elif got is not None:
                        vms.append(got)
                networks = self._networks()
            except libvirt.libvirtError as exc:
                raise self._error("read the inventory", exc) from None
        return HostInventory(host, tuple(vms), pools, networks, tuple(unchanged))

    def host_uuid(self) -> str | None:
        """libvirt's UUID of this host: one host reached by two URIs has one UUID."""
        with self._lock:
            try:
                caps = parse(self._conn.getCapabilities(), "capabilities XML")
            except libvirt.libvirtError as exc:
                raise self._error("read the host's capabilities", exc) from None
        return (caps.findtext("host/uuid") or "").strip().lower() or None

    def read_vm(self, uuid: str) -> VMFacts | None:
        with self._lock:
            dom = self._lookup(uuid, missing_ok=True)
            if dom is None:
                return None
            got = self._observe(dom, {}, self._pools())
            return got if isinstance(got, VMFacts) else None

    def _observe(
        self, dom: libvirt.virDomain, known: Mapping[str, str], pools: tuple[PoolFacts, ...]
    ) -> VMFacts | str | None:
        """VMFacts for a domain, or its UUID when its fingerprint is unchanged."""
        try:
            uuid = dom.UUIDString().lower()
            xml = dom.XMLDesc(0)
            state = _STATES.get(dom.state()[0], VMState.other)
            autostart = bool(dom.autostart())
            persistent = bool(dom.isPersistent())
            snap_names = sorted(dom.snapshotListNames(0))
        except libvirt.libvirtError as exc:
            if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                return None  # vanished between listing and reading
            raise
        by_path = self._volumes_by_path(pools)
        held = self._snapshot_growth(uuid, xml, by_path) if snap_names else []
        digest = hashlib.blake2b(digest_size=16)
        for part in (xml, state.value, str(autostart), str(persistent), *snap_names, *held):
            digest.update(part.encode())
            digest.update(b"\0")
        fingerprint = digest.hexdigest()
        if known.get(uuid) == fingerprint:
            return str(uuid)
        snapshots = tuple(
            sorted(
                (domxml.parse_snapshot(s.getXMLDesc(0)) for s in dom.listAllSnapshots(0)),
                key=lambda s: (s.created_at, s.name),
            )
        )
        facts = domxml.parse_domain(
            xml, state=state, autostart=autostart, persistent=persistent, snapshots=snapshots
        )
        disks = tuple(self._block_size(dom, d) for d in _sized_disks(facts, by_path))
        sized = _sized_snapshots(facts.snapshots, by_path)
        return replace(facts, disks=disks, snapshots=sized, fingerprint=fingerprint)

    def _snapshot_growth(
        self, uuid: str, xml: str, by_path: Mapping[str, VolumeFacts]
    ) -> list[str]:
        """Allocations of the pool volumes a VM writes to now (its newest snapshot's overlay).

        They go into the VM's fingerprint: an overlay grows without the domain XML changing,
        and its snapshot's size must follow it. The disk paths are parsed once per XML.
        """
        key = hashlib.blake2b(xml.encode(), digest_size=16).digest()
        cached = self._disk_sources.get(uuid)
        if cached is None or cached[0] != key:
            cached = (key, _disk_sources(xml))
            self._disk_sources[uuid] = cached
        vols = (by_path.get(path) for path in cached[1])
        return [f"{v.path}={v.allocation_bytes}" for v in vols if v is not None]

    def _volumes_by_path(self, pools: tuple[PoolFacts, ...]) -> dict[str, VolumeFacts]:
        """Pool volumes by path, built once per inventory read rather than once per VM."""
        if self._by_path is None or self._by_path[0] is not pools:
            self._by_path = (pools, {_norm(v.path): v for p in pools for v in p.volumes})
        return self._by_path[1]

    @staticmethod
    def _block_size(dom: libvirt.virDomain, disk: Disk) -> Disk:
        """Size of a disk no storage pool knows, asked of the hypervisor directly."""
        if (
            disk.capacity_bytes is not None
            or disk.device != "disk"
            or not disk.target
            or not disk.path
        ):
            return disk
        try:
            capacity, allocation, _physical = dom.blockInfo(disk.target, 0)
        except libvirt.libvirtError:
            return disk
        return replace(disk, capacity_bytes=int(capacity), allocation_bytes=int(allocation))

    def _host_facts(self) -> HostFacts:
        info = self._conn.getInfo()
        caps = parse(self._conn.getCapabilities(), "capabilities XML")
        cpu = caps.find("host/cpu")
        topo = cpu.find("topology") if cpu is not None else None
        model = info[0]
        vendor = None
        features: list[str] = []
        if cpu is not None:
            model = (cpu.findtext("model") or model).strip()
            vendor = cpu.findtext("vendor")
            features = sorted(f.get("name", "") for f in cpu.iterfind("feature") if f.get("name"))
            legacy = cpu.find("features")  # the test driver lists them as empty elements
            if not features and legacy is not None:
                features = sorted(c.tag for c in legacy if isinstance(c.tag, str))
        sockets = int(info[4]) * int(info[5])
        cores, threads = int(info[6]), int(info[7])
        if topo is not None:
            sockets = int(topo.get("sockets") or sockets)
            cores = int(topo.get("cores") or cores)
            threads = int(topo.get("threads") or threads)
        memory_mib = int(info[1])
        try:
            total_kib = self._conn.getMemoryStats(libvirt.VIR_NODE_MEMORY_STATS_ALL_CELLS, 0)[
                "total"
            ]
            memory_mib = max(memory_mib, int(total_kib) // 1024)
        except (libvirt.libvirtError, KeyError):
            pass
        return HostFacts(
            hostname=self._conn.getHostname(),
            cpu_model=model,
            cpu_vendor=vendor,
            cpu_features=tuple(features),
            sockets=sockets,
            cores_per_socket=cores,
            threads_per_core=threads,
            cpus=int(info[2]),
            mhz=int(info[3]),
            memory_mib=memory_mib,
            arch=(cpu.findtext("arch") if cpu is not None else None) or "unknown",
            hypervisor_type=self._conn.getType(),
            hypervisor_version=_version(self._conn.getVersion()),
            libvirt_version=_version(self._conn.getLibVersion()),
            uuid=(caps.findtext("host/uuid") or "").strip().lower() or None,
        )

    def _pools(self) -> tuple[PoolFacts, ...]:
        pools = []
        for pool in self._conn.listAllStoragePools(0):
            root = parse(pool.XMLDesc(0), "storage pool XML")
            _state, capacity, allocation, available = pool.info()
            if available >= 2**63:  # unsigned wrap-around when allocation exceeds capacity
                available = max(0, capacity - allocation)
            active = bool(pool.isActive())
            pools.append(
                PoolFacts(
                    name=pool.name(),
                    uuid=pool.UUIDString(),
                    type=root.get("type", "unknown"),
                    path=root.findtext("target/path"),
                    active=active,
                    capacity_bytes=int(capacity),
                    allocation_bytes=int(allocation),
                    available_bytes=int(available),
                    volumes=self._volumes(pool, int(allocation)) if active else (),
                )
            )
        return tuple(pools)

    def _volumes(self, pool: libvirt.virStoragePool, allocation: int) -> tuple[VolumeFacts, ...]:
        """A pool's volumes; re-read only when its volume names or allocation changed."""
        names = tuple(sorted(pool.listVolumes()))
        key = (pool.UUIDString(), names, allocation)
        cached = self._volume_cache.get(key[0])
        if cached is not None and cached[0] == key:
            return cached[1]
        volumes = []
        for vol in pool.listAllVolumes(0):
            vroot = parse(vol.XMLDesc(0), "storage volume XML")
            _, vcap, valloc = vol.info()
            fmt = vroot.find("target/format")
            volumes.append(
                VolumeFacts(
                    name=vol.name(),
                    path=vol.path(),
                    capacity_bytes=int(vcap),
                    allocation_bytes=int(valloc),
                    format=fmt.get("type") if fmt is not None else None,
                    backing_path=vroot.findtext("backingStore/path"),
                )
            )
        result = tuple(sorted(volumes, key=lambda v: v.name))
        self._volume_cache[key[0]] = (key, result)
        return result

    def _networks(self) -> tuple[NetworkFacts, ...]:
        nets = []
        for net in self._conn.listAllNetworks(0):
            root = parse(net.XMLDesc(0), "network XML")
            fwd = root.find("forward")
            bridge = root.find("bridge")
            nets.append(
                NetworkFacts(
                    name=net.name(),
                    uuid=net.UUIDString(),
                    active=bool(net.isActive()),
                    bridge=bridge.get("name") if bridge is not None else None,
                    forward_mode=fwd.get("mode", "nat") if fwd is not None else None,
                )
            )
        return tuple(nets)

    # -- writing --------------------------------------------------------------
    def set_metadata(self, uuid: str, meta: OwnerMeta, *, is_template: bool = False) -> None:
        element = domxml.build_metadata(meta, is_template=is_template)
        with self._lock:
            dom = self._lookup(uuid)
            flags = libvirt.VIR_DOMAIN_AFFECT_CONFIG
            if dom.isActive():
                flags |= libvirt.VIR_DOMAIN_AFFECT_LIVE
            if not dom.isPersistent():
                flags = libvirt.VIR_DOMAIN_AFFECT_LIVE
            try:
                dom.setMetadata(
                    libvirt.VIR_DOMAIN_METADATA_ELEMENT,
                    element,
                    domxml.METADATA_PREFIX,
                    domxml.METADATA_NS,
                    flags,
                )
            except libvirt.libvirtError as exc:
                raise self._error(f"write metadata of VM {uuid}", exc) from None
            self._write_back(dom)

    def start(self, uuid: str) -> None:
        self._act(uuid, "start", lambda d: d.create())

    def shutdown(self, uuid: str, *, force: bool = False) -> None:
        self._act(uuid, "stop", lambda d: d.destroy() if force else d.shutdown())

    def create_snapshot(self, uuid: str, name: str, description: str | None = None) -> None:
        snap = etree.Element("domainsnapshot")
        etree.SubElement(snap, "name").text = name
        if description:
            etree.SubElement(snap, "description").text = description
        self._act(uuid, "snapshot", lambda d: d.snapshotCreateXML(to_string(snap), 0))

    def delete_snapshot(self, uuid: str, name: str) -> None:
        self._act(uuid, "delete snapshot of", lambda d: d.snapshotLookupByName(name, 0).delete(0))

    def _act(self, uuid: str, verb: str, action: Callable[[libvirt.virDomain], object]) -> None:
        with self._lock:
            dom = self._lookup(uuid)
            try:
                action(dom)
            except libvirt.libvirtError as exc:
                raise self._error(f"{verb} VM {uuid}", exc) from None
            self._write_back(dom)

    # -- reclamation actions -----------------------------------------------------
    def power_off(self, uuid: str, *, grace_s: float = 60.0) -> str:
        """Press the ACPI power button, wait up to ``grace_s``, then pull the plug.

        Returns "already-off" (nothing done), "shutdown" (the guest obeyed) or "forced".
        The connection lock is not held while waiting, so syncs go on meanwhile.
        """
        with self._lock:
            dom = self._lookup(uuid)
            try:
                if not _is_active(dom):
                    return "already-off"
                if grace_s <= 0 or dom.state()[0] in _UNRESPONSIVE:
                    return self._force_off(dom, uuid)
                if not _press_power_button(dom):
                    return self._force_off(dom, uuid)
            except libvirt.libvirtError as exc:
                raise self._error(f"power off VM {uuid}", exc) from None
        if self._wait_off(dom, uuid, grace_s):
            with self._lock:
                self._write_back(dom)
            return "shutdown"
        with self._lock:
            return self._force_off(dom, uuid)

    def _force_off(self, dom: libvirt.virDomain, uuid: str) -> str:
        """Destroy; "shutdown" when the guest turned itself off just before."""
        try:
            dom.destroy()
            outcome = "forced"
        except libvirt.libvirtError as exc:
            if exc.get_error_code() not in (
                libvirt.VIR_ERR_OPERATION_INVALID,
                libvirt.VIR_ERR_NO_DOMAIN,
            ):
                raise self._error(f"power off VM {uuid}", exc) from None
            outcome = "shutdown"
        self._write_back(dom)
        return outcome

    def _wait_off(self, dom: libvirt.virDomain, uuid: str, grace_s: float) -> bool:
        deadline = time.monotonic() + grace_s
        while True:
            try:
                if not _is_active(dom):
                    return True
            except libvirt.libvirtError as exc:
                raise self._error(f"power off VM {uuid}", exc) from None
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            time.sleep(min(POWER_OFF_POLL_S, left))

    def set_autostart(self, uuid: str, enabled: bool) -> None:
        with self._lock:
            dom = self._lookup(uuid)
            try:
                if bool(dom.autostart()) == enabled:
                    return
                dom.setAutostart(int(enabled))
            except libvirt.libvirtError as exc:
                verb = "enable" if enabled else "disable"
                raise self._error(f"{verb} autostart of VM {uuid}", exc) from None
            self._write_back(dom)

    def domain_xml(self, uuid: str) -> bytes:
        with self._lock:
            dom = self._lookup(uuid)
            try:
                xml: str = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
            except libvirt.libvirtError as exc:
                raise self._error(f"read the definition of VM {uuid}", exc) from None
        return xml.encode("utf-8")

    def delete_vm(self, uuid: str, *, delete_storage: bool = True) -> list[str] | None:
        """Destroy, delete the VM's own pool volumes, undefine; None when it is already gone.

        Every check (which volumes, whether another VM needs one) runs before the first
        change, so a refusal leaves everything as it was. Volumes go before the definition:
        a failure half-way leaves a VM that a second call finishes deleting.
        """
        with self._lock:
            dom = self._lookup(uuid, missing_ok=True)
            if dom is None:
                return None
            try:
                volumes = self._own_volumes(dom, uuid) if delete_storage else []
                persistent = bool(dom.isPersistent())
                if _is_active(dom):
                    _destroy_quietly(dom)
                deleted = [_delete_volume(vol) for vol in volumes]
                if persistent:
                    _undefine(dom)
            except libvirt.libvirtError as exc:
                raise self._error(f"delete VM {uuid}", exc) from None
            self._forget(uuid, deleted)
        return deleted

    def _own_volumes(self, dom: libvirt.virDomain, uuid: str) -> list[libvirt.virStorageVol]:
        """The pool volumes among the VM's writable disks; refuse if another VM needs one."""
        _refresh_pools(self._conn)
        volumes: dict[str, libvirt.virStorageVol] = {}
        for disk in _disk_elements(dom):
            if disk.get("device", "disk") != "disk" or disk.find("readonly") is not None:
                continue  # install media and read-only images are shared by nature
            vol = self._volume_of(disk)
            if vol is not None:
                volumes.setdefault(_norm(vol.path()), vol)
        for snap in dom.listAllSnapshots(0):
            facts = domxml.parse_snapshot(snap.getXMLDesc(0))
            for path in (*facts.files, *facts.frozen):
                vol = self._volume_at(path)
                if vol is not None:
                    volumes.setdefault(_norm(vol.path()), vol)
        if volumes:
            self._refuse_shared(uuid, volumes)
        return list(volumes.values())

    def _refuse_shared(self, uuid: str, volumes: Mapping[str, libvirt.virStorageVol]) -> None:
        users = self._volume_users(exclude=uuid)
        for path in volumes:
            if path in users:
                names = ", ".join(sorted(users[path]))
                raise HypervisorError(
                    f"VM {uuid} was not deleted: its volume {path} is also used by VM {names} "
                    f"on {redact(self.uri)} as a disk or as the backing file of a linked clone; "
                    "delete or flatten those VMs first, or delete this one without its storage."
                )

    def _volume_users(self, exclude: str) -> dict[str, set[str]]:
        """Path -> names of the other VMs that use it as a disk or anywhere in a backing chain."""
        users: dict[str, set[str]] = {}
        for other in self._conn.listAllDomains(0):
            if other.UUIDString().lower() == exclude.lower():
                continue
            try:
                paths = self._paths_used_by(other)
            except libvirt.libvirtError as exc:
                if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                    continue  # undefined since the listing: it uses nothing any more
                raise
            for path in paths:
                users.setdefault(path, set()).add(other.name())
        return users

    def _paths_used_by(self, dom: libvirt.virDomain) -> set[str]:
        paths: set[str] = set()
        for disk in _disk_elements(dom):
            vol = self._volume_of(disk)
            top = _norm(vol.path()) if vol is not None else _source_path(disk)
            if top is None:
                continue
            paths.add(top)
            paths.update(_xml_backing_chain(disk, top))
            if vol is not None:
                paths.update(self._volume_backing_chain(vol))
        return paths

    def _volume_backing_chain(self, vol: libvirt.virStorageVol) -> list[str]:
        """Backing files as the storage pools know them (qcow2 headers), top to bottom."""
        chain: list[str] = []
        current = _norm(vol.path())
        for _ in range(_MAX_BACKING_DEPTH):
            backing = parse(vol.XMLDesc(0), "storage volume XML").findtext("backingStore/path")
            if not backing:
                break
            current = _norm(os.path.join(os.path.dirname(current), backing))
            if current in chain:
                break
            chain.append(current)
            vol = self._volume_at(current)
            if vol is None:
                break
        return chain

    def _volume_of(self, disk: etree._Element) -> libvirt.virStorageVol | None:
        """The pool volume behind a disk element, or None when no pool holds it."""
        src = disk.find("source")
        if src is None:
            return None
        if disk.get("type") == "volume" and src.get("pool") and src.get("volume"):
            try:
                pool = self._conn.storagePoolLookupByName(src.get("pool"))
                return pool.storageVolLookupByName(src.get("volume"))
            except libvirt.libvirtError as exc:
                if exc.get_error_code() in (
                    libvirt.VIR_ERR_NO_STORAGE_POOL,
                    libvirt.VIR_ERR_NO_STORAGE_VOL,
                ):
                    return None
                raise
        path = _source_path(disk)
        return self._volume_at(path) if path else None

    def _volume_at(self, path: str) -> libvirt.virStorageVol | None:
        try:
            return self._conn.storageVolLookupByPath(path)
        except libvirt.libvirtError as exc:
            if exc.get_error_code() == libvirt.VIR_ERR_NO_STORAGE_VOL:
                return None
            raise

    def _forget(self, uuid: str, volume_paths: list[str]) -> None:
        """Drop a deleted domain and its deleted volumes from a test-driver node file."""
        if self._node_file is None:
            return
        node = parse(self._node_file.read_bytes(), f"node file {self._node_file}")
        for d in node.iterfind("domain"):
            if (d.findtext("uuid") or "").lower() == uuid.lower():
                node.remove(d)
        gone = {_norm(p) for p in volume_paths}
        for pool in node.iterfind("pool"):
            for vol in pool.iterfind("volume"):
                if _norm(vol.findtext("target/path") or "") in gone:
                    pool.remove(vol)
        _save_node(self._node_file, node)

    def _restore_autostart(self, path: Path) -> None:
        """Apply the autostart flags Corral kept in the node file (libvirt's format has none)."""
        data = path.read_bytes()
        if CORRAL_TD_NS.encode() not in data:
            return
        for d in parse(data, f"node file {path}").iterfind("domain"):
            if d.findtext(_AUTOSTART) != "1":
                continue
            with contextlib.suppress(libvirt.libvirtError):
                self._conn.lookupByUUIDString(d.findtext("uuid") or "").setAutostart(1)

    def watch_lifecycle(self, callback: Callable[[str, str], None]) -> bool:
        """Call ``callback(uuid, event)`` on lifecycle events; False when the connection has none.

        Needs libvirt's default event loop running (see corral.hypervisor.events).
        """

        def _cb(
            _conn: object, dom: libvirt.virDomain, event: int, _detail: int, _opaque: object
        ) -> None:
            callback(dom.UUIDString().lower(), str(event))

        try:
            self._conn.domainEventRegisterAny(
                None, libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE, _cb, None
            )
        except libvirt.libvirtError:
            return False
        return True

    def is_alive(self) -> bool:
        try:
            return bool(self._conn.isAlive())
        except libvirt.libvirtError:
            return False

    def close(self) -> None:
        with self._lock, contextlib.suppress(libvirt.libvirtError):
            self._conn.close()

    # -- helpers --------------------------------------------------------------
    def _lookup(self, uuid: str, missing_ok: bool = False) -> libvirt.virDomain:
        try:
            return self._conn.lookupByUUIDString(uuid)
        except libvirt.libvirtError as exc:
            if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                if missing_ok:
                    return None
                raise NotFoundError(f"VM {uuid} is not on host {redact(self.uri)}.") from None
            raise self._error(f"look up VM {uuid}", exc) from None

    def _error(self, doing: str, exc: libvirt.libvirtError) -> HypervisorError:
        msg = (exc.get_error_message() or str(exc)).strip().rstrip(".")
        if exc.get_error_code() in (
            libvirt.VIR_ERR_SYSTEM_ERROR,
            libvirt.VIR_ERR_NO_CONNECT,
            libvirt.VIR_ERR_RPC,
        ):
            log.info("host %s stopped answering (%s): %s", redact(self.uri), doing, msg)
            return HostUnreachableError(f"the host stopped answering while trying to {doing}.")
        return HypervisorError(f"libvirt refused to {doing} on {redact(self.uri)}: {msg}.")

    def _write_back(self, dom: libvirt.virDomain) -> None:
        """Persist a test-driver domain's new state into its node file (atomic replace)."""
        if self._node_file is None:
            return
        path = self._node_file
        uuid = dom.UUIDString().lower()
        try:
            new = parse(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE), "domain XML")
        except libvirt.libvirtError as exc:
            if exc.get_error_code() != libvirt.VIR_ERR_NO_DOMAIN:
                raise
            self._forget(uuid, [])  # a transient domain ends when it stops
            return
        node = parse(path.read_bytes(), f"node file {path}")
        old = next(
            (d for d in node.iterfind("domain") if (d.findtext("uuid") or "").lower() == uuid), None
        )
        run = etree.SubElement(new, f"{{{TEST_NS}}}runstate")
        run.text = str(dom.state()[0])
        for snap in dom.listAllSnapshots(0):
            holder = etree.SubElement(new, f"{{{TEST_NS}}}domainsnapshot")
            sroot = parse(snap.getXMLDesc(0), "snapshot XML")
            if sroot.find("active") is None:
                etree.SubElement(sroot, "active").text = "1" if snap.isCurrent(0) else "0"
            for child in sroot:
                holder.append(child)
        if dom.autostart():
            etree.SubElement(new, _AUTOSTART).text = "1"
        if old is not None:
            node.replace(old, new)
        else:
            node.append(new)
        _save_node(path, node)


def _save_node(path: Path, node: etree._Element) -> None:
    """Write a node file whole, by atomic replace: a reader never sees half a file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".corral-", suffix=".xml")
    with os.fdopen(fd, "wb") as fh:
        fh.write(etree.tostring(node, xml_declaration=False, encoding="utf-8", pretty_print=True))
    os.replace(tmp, path)


def _is_active(dom: libvirt.virDomain) -> bool:
    """Running, paused or otherwise holding resources; a vanished transient domain is not."""
    try:
        return bool(dom.isActive())
    except libvirt.libvirtError as exc:
        if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
            return False
        raise


def _press_power_button(dom: libvirt.virDomain) -> bool:
    """Ask for an ACPI shutdown; False when the guest cannot be asked (no ACPI, say)."""
    try:
        dom.shutdownFlags(libvirt.VIR_DOMAIN_SHUTDOWN_ACPI_POWER_BTN)
    except libvirt.libvirtError as exc:
        if exc.get_error_code() not in _FLAG_REFUSED:
            log.info("ACPI shutdown of %s refused: %s", dom.name(), exc.get_error_message())
            return False
        dom.shutdown()  # a driver without shutdown modes (the test driver)
    return True


def _destroy_quietly(dom: libvirt.virDomain) -> None:
    """Destroy; a guest that stopped on its own in the meantime is fine."""
    try:
        dom.destroy()
    except libvirt.libvirtError as exc:
        if exc.get_error_code() not in (
            libvirt.VIR_ERR_OPERATION_INVALID,
            libvirt.VIR_ERR_NO_DOMAIN,
        ):
            raise


def _undefine(dom: libvirt.virDomain) -> None:
    """Undefine with snapshot metadata, managed save and NVRAM; fewer flags if refused."""
    for flags in _UNDEFINE_FLAGS:
        try:
            if flags:
                dom.undefineFlags(flags)
            else:
                dom.undefine()
            return
        except libvirt.libvirtError as exc:
            if flags == 0 or exc.get_error_code() not in _FLAG_REFUSED:
                raise


def _delete_volume(vol: libvirt.virStorageVol) -> str:
    path: str = vol.path()
    vol.delete(0)
    return path


def _refresh_pools(conn: libvirt.virConnect) -> None:
    """Let the pools notice files created behind libvirt's back (qemu-img, copies)."""
    for pool in conn.listAllStoragePools(libvirt.VIR_CONNECT_LIST_STORAGE_POOLS_ACTIVE):
        with contextlib.suppress(libvirt.libvirtError):
            pool.refresh(0)


def _disk_elements(dom: libvirt.virDomain) -> list[etree._Element]:
    """Disks of the live and the persistent definition (a hot-plugged disk is in one only)."""
    docs = [dom.XMLDesc(0)]
    if dom.isActive() and dom.isPersistent():
        docs.append(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
    return [d for doc in docs for d in parse(doc, "domain XML").iterfind("devices/disk")]


def _source_path(disk: etree._Element) -> str | None:
    src = disk.find("source")
    if src is None:
        return None
    path = src.get("file") or src.get("dev")
    return _norm(path) if path else None


def _xml_backing_chain(disk: etree._Element, top: str) -> list[str]:
    """Backing files the domain XML itself names (<backingStore>, nested), top to bottom."""
    chain: list[str] = []
    parent_dir = os.path.dirname(top)
    store = disk.find("backingStore")
    while store is not None and len(chain) < _MAX_BACKING_DEPTH:
        path = _source_path(store)
        if path is None:
            break
        path = _norm(os.path.join(parent_dir, path))
        chain.append(path)
        parent_dir = os.path.dirname(path)
        store = store.find("backingStore")
    return chain


def _norm(path: str) -> str:
    return os.path.normpath(path) if path else path


def _version(v: int) -> str:
    return f"{v // 1_000_000}.{(v // 1000) % 1000}.{v % 1000}"


def _disk_sources(xml: str) -> tuple[str, ...]:
    """The (normalised) file or device path of each disk of a domain."""
    root = parse(xml, "domain XML")
    paths = (src.get("file") or src.get("dev") for src in root.iterfind("devices/disk/source"))
    return tuple(_norm(p) for p in paths if p)


def _sized_snapshots(
    snapshots: tuple[Snapshot, ...], by_path: Mapping[str, VolumeFacts]
) -> tuple[Snapshot, ...]:
    """External snapshots sized by their overlay files' allocation; internal ones stay unknown.

    Only a storage pool's word counts: a file no pool holds leaves the size None (the test
    driver's blockInfo invents its numbers), and so does one unknown file among several.
    """
    out = []
    for snap in snapshots:
        vols = [by_path.get(_norm(f)) for f in snap.files]
        if snap.kind != "external" or not vols or None in vols:
            out.append(snap)
            continue
        out.append(replace(snap, size_bytes=sum(v.allocation_bytes for v in vols if v)))
    return tuple(out)


def _sized_disks(facts: VMFacts, by_path: Mapping[str, VolumeFacts]) -> tuple[Any, ...]:
    """Disk sizes from the storage pools that hold them (libvirt's domain XML has none)."""
    out = []
    for d in facts.disks:
        vol = by_path.get(_norm(d.path or ""))
        if vol is None:
            out.append(d)
        else:
            out.append(
                replace(
                    d,
                    capacity_bytes=vol.capacity_bytes,
                    allocation_bytes=vol.allocation_bytes,
                    format=d.format or vol.format,
                    backing_path=d.backing_path or vol.backing_path,
                )
            )
    return tuple(out)
