"""Reading a host: its facts, VMs, storage pools, volumes and networks."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import NamedTuple

import libvirt
from lxml import etree

from corral.domain.model import (
    Disk,
    HostFacts,
    HostInventory,
    NetworkFacts,
    PoolFacts,
    Snapshot,
    VMFacts,
    VMState,
    VolumeFacts,
)
from corral.hypervisor import domxml
from corral.hypervisor.libvirt.core import _FLAG_REFUSED, HypervisorCore, _norm
from corral.hypervisor.xmlsafe import parse

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


class Reading(HypervisorCore):
    """The read side of the adapter; caches make a re-read of an unchanged host cheap."""

    def read_inventory(self, known: Mapping[str, str] | None = None) -> HostInventory:
        known = known or {}
        with self._lock:
            try:
                host = self._host_facts()
                pools = self._pools()
                vms: list[VMFacts] = []
                unchanged: list[str] = []
                live = self._live_values()
                domains = (
                    live.domains
                    if live is not None
                    else [(d, d.UUIDString().lower()) for d in self._conn.listAllDomains(0)]
                )
                for dom, uuid in domains:
                    got = self._observe(dom, uuid, known, pools, live)
                    if isinstance(got, str):
                        unchanged.append(got)
                    elif got is not None:
                        vms.append(got)
                networks = self._networks()
            except libvirt.libvirtError as exc:
                raise self._error("read the inventory", exc) from None
        return HostInventory(host, tuple(vms), pools, networks, tuple(unchanged))

    def _live_values(self) -> _LiveValues | None:
        """Every domain, with its state, autostart, persistence and whether it has snapshots,
        in four calls for the whole host instead of four per domain (each a round trip to a
        remote host). None when the driver refuses them: each domain is then asked on its own.

        The domains are those the states came with (a list of them all would make a second
        object of each). Persistence is asked as its converse, the transient domains, which
        are few where the persistent ones are every domain: each domain listed is an object
        made, named and freed, and an unchanged re-read made three of every domain, not one.
        """
        conn = self._conn
        try:
            stats = conn.getAllDomainStats(libvirt.VIR_DOMAIN_STATS_STATE, 0)

            def uuids(flag: int) -> frozenset[str]:
                return frozenset(d.UUIDString().lower() for d in conn.listAllDomains(flag))

            domains = []
            states = {}
            for dom, values in stats:
                uuid = dom.UUIDString().lower()
                domains.append((dom, uuid))
                states[uuid] = int(values["state.state"])
            return _LiveValues(
                domains=tuple(domains),
                states=states,
                autostart=uuids(libvirt.VIR_CONNECT_LIST_DOMAINS_AUTOSTART),
                transient=uuids(libvirt.VIR_CONNECT_LIST_DOMAINS_TRANSIENT),
                with_snapshots=uuids(libvirt.VIR_CONNECT_LIST_DOMAINS_HAS_SNAPSHOT),
            )
        except libvirt.libvirtError as exc:
            if exc.get_error_code() in _FLAG_REFUSED:
                return None
            raise
        except KeyError:  # a driver that answers the stats without the state
            return None

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
            got = self._observe(dom, dom.UUIDString().lower(), {}, self._pools(), None)
            return got if isinstance(got, VMFacts) else None

    def _observe(
        self,
        dom: libvirt.virDomain,
        uuid: str,
        known: Mapping[str, str],
        pools: tuple[PoolFacts, ...],
        live: _LiveValues | None,
    ) -> VMFacts | str | None:
        """VMFacts for a domain (``uuid``: its UUID, lower case), or its UUID when its
        fingerprint is unchanged."""
        try:
            xml = dom.XMLDesc(0)
            raw_state, autostart, persistent, has_snapshots = _live_of(dom, uuid, live)
            state = _STATES.get(raw_state, VMState.other)
            # A running domain's persistent definition can hold other metadata than its live one.
            config_meta = (
                _config_metadata(dom)
                if persistent and raw_state != libvirt.VIR_DOMAIN_SHUTOFF
                else None
            )
            snap_names = sorted(dom.snapshotListNames(0)) if has_snapshots else []
        except libvirt.libvirtError as exc:
            if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                return None  # vanished between listing and reading
            raise
        held = self._snapshot_growth(uuid, xml, self._volumes_by_path(pools)) if snap_names else []
        parts = (xml, config_meta or "", state.value, str(autostart), str(persistent))
        fingerprint = _fingerprint((*parts, *snap_names, *held))
        if known.get(uuid) == fingerprint:
            return uuid
        by_path = self._volumes_by_path(pools)
        snapshots = tuple(
            sorted(
                (domxml.parse_snapshot(s.getXMLDesc(0)) for s in dom.listAllSnapshots(0)),
                key=lambda s: (s.created_at, s.name),
            )
            if snap_names
            else ()
        )
        facts = domxml.parse_domain(
            xml,
            state=state,
            autostart=autostart,
            persistent=persistent,
            snapshots=_sized_snapshots(snapshots, by_path),
            config_metadata=config_meta,
            size_disk=lambda path: by_path.get(_norm(path)),
            fingerprint=fingerprint,
        )
        if any(_needs_block_info(d) for d in facts.disks):
            facts = replace(facts, disks=tuple(self._block_size(dom, d) for d in facts.disks))
        return facts

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
        if not _needs_block_info(disk):
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
                    source=_pool_source(root),
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
        volumes = [_volume(vol) for vol in pool.listAllVolumes(0)]
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

    def domain_xml(self, uuid: str) -> bytes:
        with self._lock:
            dom = self._lookup(uuid)
            try:
                xml: str = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
            except libvirt.libvirtError as exc:
                raise self._error(f"read the definition of VM {uuid}", exc) from None
        return xml.encode("utf-8")


def _volume(vol: libvirt.virStorageVol) -> VolumeFacts:
    """A volume from its XML alone, which carries its name, path and sizes (libvirt refreshes
    the volume for either call): one round trip, not four."""
    told = _volume_xml(vol.XMLDesc(0))
    name, path, capacity, allocation = told.name, told.path, told.capacity, told.allocation
    if name is None or path is None or capacity is None or allocation is None:
        _, capacity, allocation = vol.info()  # a driver that leaves them out of the XML
        name, path = vol.name(), vol.path()
    return VolumeFacts(
        name=name,
        path=path,
        capacity_bytes=int(capacity),
        allocation_bytes=int(allocation),
        format=told.format,
        backing_path=told.backing_path,
    )


class _VolumeXML(NamedTuple):
    """What a storage volume's XML tells of it (None: what it leaves out)."""

    name: str | None
    path: str | None
    capacity: int | None
    allocation: int | None
    format: str | None
    backing_path: str | None


def _volume_xml(xml: str) -> _VolumeXML:
    """A volume's XML read by one walk of its root's children, where a ``find`` per field
    walked them once each, in Python (a first sync reads a volume for each disk)."""
    top = domxml.children_by_tag(parse(xml, "storage volume XML"))
    targets = top.get("target", ())
    fmt = domxml.first_child(targets, "format")
    return _VolumeXML(
        name=_text_of(_head(top, "name")),
        path=_text_of(domxml.first_child(targets, "path")),
        capacity=domxml.size_in_bytes(_head(top, "capacity")),
        allocation=domxml.size_in_bytes(_head(top, "allocation")),
        format=fmt.get("type") if fmt is not None else None,
        backing_path=_text_of(domxml.first_child(top.get("backingStore", ()), "path")),
    )


def _head(parts: Mapping[str, list[etree._Element]], tag: str) -> etree._Element | None:
    """The first child of that tag, of children grouped by tag (domxml.children_by_tag)."""
    found = parts.get(tag)
    return found[0] if found else None


def _text_of(el: etree._Element | None) -> str | None:
    """An element's text as ``findtext`` gives it: "" when it has none, None without it."""
    return None if el is None else (el.text or "")


def _pool_source(root: etree._Element) -> str | None:
    """A pool's <source> as one string (hosts, directory, devices, name); None if it has none."""
    src = root.find("source")
    if src is None:
        return None
    parts = [
        ",".join(sorted(h.get("name", "") for h in src.iterfind("host"))),
        _attr(src.find("dir"), "path"),
        ",".join(sorted(d.get("path", "") for d in src.iterfind("device"))),
        (src.findtext("name") or "").strip(),
    ]
    return "|".join(parts) if any(parts) else None


def _config_metadata(dom: libvirt.virDomain) -> str | None:
    """Corral's metadata element in the persistent definition; None when it has none."""
    try:
        xml: str = dom.metadata(
            libvirt.VIR_DOMAIN_METADATA_ELEMENT,
            domxml.METADATA_NS,
            libvirt.VIR_DOMAIN_AFFECT_CONFIG,
        )
    except libvirt.libvirtError as exc:
        if exc.get_error_code() in (libvirt.VIR_ERR_NO_DOMAIN_METADATA, *_FLAG_REFUSED):
            return None
        raise
    return xml


def _attr(el: etree._Element | None, name: str) -> str:
    return (el.get(name) or "") if el is not None else ""


def _version(v: int) -> str:
    return f"{v // 1_000_000}.{(v // 1000) % 1000}.{v % 1000}"


def _disk_sources(xml: str) -> tuple[str, ...]:
    """The (normalised) file or device path of each disk of a domain."""
    root = parse(xml, "domain XML")
    paths = (src.get("file") or src.get("dev") for src in root.iterfind("devices/disk/source"))
    return tuple(_norm(p) for p in paths if p)


def _fingerprint(parts: Sequence[str]) -> str:
    """The digest of the parts, each followed by a NUL: hashed in one call, it is the digest
    that hashing them one at a time gave (fingerprints stored before still match)."""
    return hashlib.blake2b("\0".join((*parts, "")).encode(), digest_size=16).hexdigest()


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


def _needs_block_info(disk: Disk) -> bool:
    """A disk whose size no storage pool told: only the hypervisor knows it."""
    return disk.capacity_bytes is None and disk.device == "disk" and bool(disk.target and disk.path)


@dataclass(frozen=True, slots=True)
class _LiveValues:
    """What libvirt tells of every domain of a host beside its XML, asked once per host."""

    domains: tuple[tuple[libvirt.virDomain, str], ...]  # each with its UUID, lower case
    states: Mapping[str, int]
    autostart: frozenset[str]
    transient: frozenset[str]
    with_snapshots: frozenset[str]


def _live_of(
    dom: libvirt.virDomain, uuid: str, live: _LiveValues | None
) -> tuple[int, bool, bool, bool]:
    """(raw state, autostart, persistent, has snapshots) of a domain: from the host-wide
    answers when they cover it, else asked of the domain (a domain defined after them)."""
    if live is not None and uuid in live.states:
        return (
            live.states[uuid],
            uuid in live.autostart,
            uuid not in live.transient,
            uuid in live.with_snapshots,
        )
    return dom.state()[0], bool(dom.autostart()), bool(dom.isPersistent()), True
