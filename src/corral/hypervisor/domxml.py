"""Read domain XML into VMFacts, and build Corral's <metadata> element.

Every field is read by an XPath; nothing is ever assembled from strings.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, date, datetime

from lxml import etree

from corral.domain.model import Disk, Nic, OwnerMeta, Snapshot, VMFacts, VMState, VolumeFacts
from corral.errors import ValidationError
from corral.hypervisor.xmlsafe import parse

#: Corral's XML namespace inside a domain's <metadata>.
METADATA_NS = "urn:corral:vm:1"
METADATA_PREFIX = "corral"
METADATA_ROOT = "vm"
_METADATA_TAG = f"{{{METADATA_NS}}}{METADATA_ROOT}"

_UNITS = {
    "b": 1,
    "bytes": 1,
    "k": 1024,
    "kib": 1024,
    "kb": 1000,
    "m": 1024**2,
    "mib": 1024**2,
    "mb": 1000**2,
    "g": 1024**3,
    "gib": 1024**3,
    "gb": 1000**3,
    "t": 1024**4,
    "tib": 1024**4,
    "tb": 1000**4,
}

# Text fields of the metadata element, in the order they are written.
_META_TEXT_FIELDS = (
    "owner",
    "department",
    "purpose",
    "project",
    "environment",
    "protection_tier",
    "created_by",
)


def _bytes(el: etree._Element | None, default_unit: str = "kib") -> int | None:
    if el is None or el.text is None:
        return None
    unit = (el.get("unit") or default_unit).lower()
    try:
        return int(el.text.strip()) * _UNITS[unit]
    except (ValueError, KeyError):
        return None


def size_in_bytes(el: etree._Element | None) -> int | None:
    """A storage size element (``<capacity unit='bytes'>``); bytes when it names no unit."""
    return _bytes(el, "bytes")


def _text(root: etree._Element, path: str) -> str | None:
    el = root.find(path)
    if el is None or el.text is None:
        return None
    return el.text.strip() or None


def _children(parents: Iterable[etree._Element], tag: str) -> Iterator[etree._Element]:
    """The ``tag`` children of each parent, in document order: the path "parent/tag"."""
    for parent in parents:
        for child in parent:
            if child.tag == tag:
                yield child


def first_child(parents: Iterable[etree._Element], tag: str) -> etree._Element | None:
    """The first ``tag`` child of any of the parents: the path "parent/tag" of ``find``."""
    return next(_children(parents, tag), None)


def _stripped(el: etree._Element | None) -> str | None:
    if el is None or el.text is None:
        return None
    return el.text.strip() or None


def children_by_tag(el: etree._Element) -> dict[str, list[etree._Element]]:
    """An element's children grouped by tag, in document order: one walk answers every
    "child/grandchild" path of a document (ElementPath's find walks once per path, in
    Python, and a first sync reads thousands of domains and volumes)."""
    out: dict[str, list[etree._Element]] = {}
    for child in el:  # a comment's tag is a function: a key no path asks for
        found = out.get(child.tag)
        if found is None:
            out[child.tag] = [child]
        else:
            found.append(child)
    return out


def parse_disks(root: etree._Element) -> tuple[Disk, ...]:
    return _disks(_children(children_by_tag(root).get("devices", ()), "disk"))


#: The storage volume at a disk's path (None: no pool holds it), to size the disk with.
SizeDisk = Callable[[str], VolumeFacts | None]


def _disks(
    elements: Iterable[etree._Element], size_disk: SizeDisk | None = None
) -> tuple[Disk, ...]:
    """Each disk as its XML tells it, sized from the pool volume at its path when
    ``size_disk`` knows one (libvirt's domain XML carries no sizes)."""
    disks = []
    for d in elements:
        parts = children_by_tag(d)
        src = _one(parts, "source")
        path = None
        if src is not None:
            path = src.get("file") or src.get("dev") or src.get("volume") or src.get("name")
        backing = first_child(parts.get("backingStore", ()), "source")
        target = _one(parts, "target")
        driver = _one(parts, "driver")
        fmt = driver.get("type") if driver is not None else None
        backing_path = backing.get("file") if backing is not None else None
        vol = size_disk(path) if size_disk is not None and path else None
        disks.append(
            Disk(
                target=target.get("dev", "") if target is not None else "",
                device=d.get("device", "disk"),
                path=path,
                format=(fmt or vol.format) if vol else fmt,
                bus=target.get("bus") if target is not None else None,
                capacity_bytes=vol.capacity_bytes if vol else None,
                allocation_bytes=vol.allocation_bytes if vol else None,
                backing_path=(backing_path or vol.backing_path) if vol else backing_path,
            )
        )
    return tuple(disks)


def parse_nics(root: etree._Element) -> tuple[Nic, ...]:
    return _nics(_children(children_by_tag(root).get("devices", ()), "interface"))


def _nics(elements: Iterable[etree._Element]) -> tuple[Nic, ...]:
    nics = []
    for n in elements:
        parts = children_by_tag(n)
        mac = _one(parts, "mac")
        src = _one(parts, "source")
        model = _one(parts, "model")
        nics.append(
            Nic(
                mac=(mac.get("address", "") if mac is not None else "").lower(),
                type=n.get("type", "unknown"),
                source=(
                    (src.get("network") or src.get("bridge") or src.get("dev"))
                    if src is not None
                    else None
                ),
                model=model.get("type") if model is not None else None,
                network=src.get("network") if src is not None else None,
            )
        )
    return tuple(nics)


def _one(parts: dict[str, list[etree._Element]], tag: str) -> etree._Element | None:
    found = parts.get(tag)
    return found[0] if found else None


def _metadata_element(root: etree._Element) -> etree._Element | None:
    """Corral's element in a domain, or the element itself (libvirt's virDomainGetMetadata
    gives it without its namespace)."""
    if root.tag in (f"{{{METADATA_NS}}}{METADATA_ROOT}", METADATA_ROOT):
        return root
    return root.find(f"metadata/{{{METADATA_NS}}}{METADATA_ROOT}")


def parse_metadata(root: etree._Element) -> tuple[OwnerMeta, bool]:
    """Corral's metadata in a domain (or the bare element); returns (meta, is_template)."""
    return _owner_meta(_metadata_element(root))


def parse_revision(root: etree._Element) -> int | None:
    """The version Corral stamped into its metadata (in a domain, or the bare element)."""
    return _revision(_metadata_element(root))


def _local(tag: str) -> str:
    """A tag's name without its namespace (what ``etree.QName(el).localname`` answers)."""
    return tag.rpartition("}")[2]


def _owner_meta(el: etree._Element | None) -> tuple[OwnerMeta, bool]:
    if el is None:
        return OwnerMeta(), False
    values: dict[str, str] = {}
    tags: list[str] = []
    for child in el:
        tag = child.tag
        if not isinstance(tag, str):
            continue
        local = _local(tag)
        if local == "tags":
            tags.extend((t.text or "").strip() for t in child if (t.text or "").strip())
        elif local != "revision" and child.text and (text := child.text.strip()):
            values[local.replace("-", "_")] = text
    get = values.get  # each field named: no mapping built to be unpacked, for every domain
    meta = OwnerMeta(
        owner=get("owner"),
        department=get("department"),
        purpose=get("purpose"),
        project=get("project"),
        environment=get("environment"),
        expires_on=_date(get("expires_on")),
        protection_tier=get("protection_tier"),
        created_by=get("created_by"),
        created_on=_date(get("created_on")),
        tags=tuple(sorted(set(tags))),
    )
    return meta, get("template", "").lower() in ("1", "true", "yes")


def _revision(el: etree._Element | None) -> int | None:
    children = [c for c in el if isinstance(c.tag, str)] if el is not None else []
    text = next((c.text for c in children if _local(c.tag) == "revision"), None)
    try:
        return int(text.strip()) if text else None
    except ValueError:
        return None


def _date(value: str | None) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        return None


def build_metadata(
    meta: OwnerMeta, *, is_template: bool = False, revision: int | None = None
) -> str:
    """The <vm> element Corral writes with virDomainSetMetadata (namespace added by libvirt).

    ``revision`` is the store's metadata version this element carries, so that a sync can
    tell a domain read before a newer write from one edited after it.
    """
    root = etree.Element(METADATA_ROOT)
    if revision is not None:
        etree.SubElement(root, "revision").text = str(revision)
    for name in _META_TEXT_FIELDS:
        value = getattr(meta, name)
        if value:
            etree.SubElement(root, name.replace("_", "-")).text = str(value)
    for name in ("expires_on", "created_on"):
        value = getattr(meta, name)
        if value:
            etree.SubElement(root, name.replace("_", "-")).text = value.isoformat()
    if is_template:
        etree.SubElement(root, "template").text = "true"
    if meta.tags:
        tags = etree.SubElement(root, "tags")
        for tag in meta.tags:
            etree.SubElement(tags, "tag").text = tag
    return etree.tostring(root, encoding="unicode")


def parse_snapshot(xml: str) -> Snapshot:
    """A snapshot's facts; its size is left unknown (only the storage pools can tell it)."""
    root = parse(xml, "snapshot XML")
    created = int(_text(root, "creationTime") or 0)
    return Snapshot(
        name=_text(root, "name") or "",
        created_at=datetime.fromtimestamp(created, tz=UTC),
        state=_text(root, "state"),
        parent=_text(root, "parent/name"),
        description=_text(root, "description"),
        kind=_snapshot_kind(root),
        files=_external_files(root),
        frozen=_frozen_files(root),
    )


def _snapshot_kind(root: etree._Element) -> str | None:
    """External if any disk or the memory went to a new file, internal if kept in the image."""
    modes = {d.get("snapshot") for d in root.iterfind("disks/disk")}
    memory = root.find("memory")
    if memory is not None:
        modes.add(memory.get("snapshot"))
    for kind in ("external", "internal"):
        if kind in modes:
            return kind
    return None


def _frozen_files(root: etree._Element) -> tuple[str, ...]:
    """The images an external snapshot froze: each external disk's source in the snapshot's
    copy of the domain, which is the definition as it was when the snapshot was taken."""
    sources = {}
    for disk in root.iterfind("domain/devices/disk"):
        target, src = disk.find("target"), disk.find("source")
        if target is not None and src is not None:
            sources[target.get("dev")] = src.get("file") or src.get("dev")
    names = [d.get("name") for d in root.iterfind("disks/disk") if d.get("snapshot") == "external"]
    return tuple(path for path in (sources.get(n) for n in names) if path)


def _external_files(root: etree._Element) -> tuple[str, ...]:
    """The overlay (and memory) files an external snapshot created, in document order."""
    files: list[str] = []
    for disk in root.iterfind("disks/disk"):
        src = disk.find("source")
        if disk.get("snapshot") == "external" and src is not None:
            path = src.get("file") or src.get("dev")
            if path:
                files.append(path)
    memory = root.find("memory")
    if memory is not None and memory.get("snapshot") == "external" and memory.get("file"):
        files.append(memory.get("file", ""))
    return tuple(files)


def parse_domain(
    xml: str,
    *,
    state: VMState,
    autostart: bool = False,
    persistent: bool = True,
    snapshots: tuple[Snapshot, ...] = (),
    config_metadata: str | None = None,
    size_disk: SizeDisk | None = None,
    fingerprint: str = "",
) -> VMFacts:
    """VMFacts from a domain's XML description and the live values libvirt gives beside it.

    ``config_metadata``, Corral's element in the persistent definition of a running domain,
    is where its metadata is read from when given: ``virsh metadata --config`` changes only
    that one, and it is the one that survives a restart. ``size_disk`` sizes the disks as
    they are built (see ``_disks``), so a first sync builds each VM's facts once.
    """
    root = parse(xml, "domain XML")
    meta_root = parse(config_metadata, "domain metadata") if config_metadata else root
    if root.tag != "domain":
        raise ValidationError(f"expected a <domain> element, found <{root.tag}>.")
    top = children_by_tag(root)
    uuid = _stripped(_one(top, "uuid"))
    name = _stripped(_one(top, "name"))
    if not uuid or not name:
        raise ValidationError("domain XML has no name or UUID.")
    vcpu_el = _one(top, "vcpu")
    vcpus = int(vcpu_el.get("current") or vcpu_el.text or 1) if vcpu_el is not None else 1
    mem_max = _bytes(_one(top, "memory")) or 0
    mem_cur = _bytes(_one(top, "currentMemory")) or mem_max
    meta_el = (
        _metadata_element(meta_root)
        if config_metadata
        else first_child(top.get("metadata", ()), _METADATA_TAG)
    )
    meta, is_template = _owner_meta(meta_el)
    os_type_el = first_child(top.get("os", ()), "type")
    cpu = _one(top, "cpu")
    devices = top.get("devices", ())
    return VMFacts(
        uuid=uuid.lower(),
        name=name,
        state=state,
        vcpus=vcpus,
        memory_max_mib=mem_max // 1024**2,
        memory_mib=mem_cur // 1024**2,
        cpu_model=_stripped(first_child(top.get("cpu", ()), "model"))
        or (cpu.get("mode") if cpu is not None else None),
        os_type=os_type_el.text if os_type_el is not None else None,
        arch=os_type_el.get("arch") if os_type_el is not None else None,
        autostart=autostart,
        persistent=persistent,
        is_template=is_template,
        disks=_disks(_children(devices, "disk"), size_disk),
        nics=_nics(_children(devices, "interface")),
        snapshots=snapshots,
        meta=meta,
        meta_revision=_revision(meta_el),
        fingerprint=fingerprint,
    )
