"""The domain reader as it was before the single-walk reader: one ElementPath find per field.

Kept as the oracle of tests/inventory/test_domxml_single_walk.py, which checks that the faster
reader in corral.hypervisor.domxml answers exactly what this one answered.
"""

from __future__ import annotations

from datetime import date

from lxml import etree

from corral.domain.model import Disk, Nic, OwnerMeta, Snapshot, VMFacts, VMState
from corral.errors import ValidationError
from corral.hypervisor.domxml import METADATA_NS, METADATA_ROOT
from corral.hypervisor.xmlsafe import parse

_META_TEXT_FIELDS = (
    "owner",
    "department",
    "purpose",
    "project",
    "environment",
    "protection_tier",
    "created_by",
)

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


def _bytes(el: etree._Element | None, default_unit: str = "kib") -> int | None:
    if el is None or el.text is None:
        return None
    unit = (el.get("unit") or default_unit).lower()
    try:
        return int(el.text.strip()) * _UNITS[unit]
    except (ValueError, KeyError):
        return None


def _text(root: etree._Element, path: str) -> str | None:
    el = root.find(path)
    if el is None or el.text is None:
        return None
    return el.text.strip() or None


def parse_disks(root: etree._Element) -> tuple[Disk, ...]:
    disks = []
    for d in root.iterfind("devices/disk"):
        src = d.find("source")
        path = None
        if src is not None:
            path = src.get("file") or src.get("dev") or src.get("volume") or src.get("name")
        backing = d.find("backingStore/source")
        target = d.find("target")
        driver = d.find("driver")
        disks.append(
            Disk(
                target=target.get("dev", "") if target is not None else "",
                device=d.get("device", "disk"),
                path=path,
                format=driver.get("type") if driver is not None else None,
                bus=target.get("bus") if target is not None else None,
                backing_path=backing.get("file") if backing is not None else None,
            )
        )
    return tuple(disks)


def parse_nics(root: etree._Element) -> tuple[Nic, ...]:
    nics = []
    for n in root.iterfind("devices/interface"):
        mac = n.find("mac")
        src = n.find("source")
        model = n.find("model")
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


def _metadata_element(root: etree._Element) -> etree._Element | None:
    """Corral's element in a domain, or the element itself (libvirt's virDomainGetMetadata
    gives it without its namespace)."""
    if root.tag in (f"{{{METADATA_NS}}}{METADATA_ROOT}", METADATA_ROOT):
        return root
    return root.find(f"metadata/{{{METADATA_NS}}}{METADATA_ROOT}")


def parse_metadata(root: etree._Element) -> tuple[OwnerMeta, bool]:
    """Corral's metadata in a domain (or the bare element); returns (meta, is_template)."""
    el = _metadata_element(root)
    if el is None:
        return OwnerMeta(), False
    values: dict[str, str] = {}
    tags: list[str] = []
    for child in el:
        if not isinstance(child.tag, str):
            continue
        local = etree.QName(child).localname
        if local == "tags":
            tags.extend((t.text or "").strip() for t in child if (t.text or "").strip())
        elif local == "revision":
            continue
        elif child.text and child.text.strip():
            values[local.replace("-", "_")] = child.text.strip()
    meta = OwnerMeta(
        **{k: values.get(k) for k in _META_TEXT_FIELDS},
        expires_on=_date(values.get("expires_on")),
        created_on=_date(values.get("created_on")),
        tags=tuple(sorted(set(tags))),
    )
    return meta, values.get("template", "").lower() in ("1", "true", "yes")


def parse_revision(root: etree._Element) -> int | None:
    """The version Corral stamped into its metadata (in a domain, or the bare element)."""
    el = _metadata_element(root)
    children = [c for c in el if isinstance(c.tag, str)] if el is not None else []
    found = (c for c in children if etree.QName(c).localname == "revision")
    text = next((c.text for c in found), None)
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


def parse_domain(
    xml: str,
    *,
    state: VMState,
    autostart: bool = False,
    persistent: bool = True,
    snapshots: tuple[Snapshot, ...] = (),
    config_metadata: str | None = None,
) -> VMFacts:
    """VMFacts from a domain's XML description and the live values libvirt gives beside it.

    ``config_metadata``, Corral's element in the persistent definition of a running domain,
    is where its metadata is read from when given: ``virsh metadata --config`` changes only
    that one, and it is the one that survives a restart.
    """
    root = parse(xml, "domain XML")
    meta_root = parse(config_metadata, "domain metadata") if config_metadata else root
    if root.tag != "domain":
        raise ValidationError(f"expected a <domain> element, found <{root.tag}>.")
    uuid = _text(root, "uuid")
    name = _text(root, "name")
    if not uuid or not name:
        raise ValidationError("domain XML has no name or UUID.")
    vcpu_el = root.find("vcpu")
    vcpus = int(vcpu_el.get("current") or vcpu_el.text or 1) if vcpu_el is not None else 1
    mem_max = _bytes(root.find("memory")) or 0
    mem_cur = _bytes(root.find("currentMemory")) or mem_max
    meta, is_template = parse_metadata(meta_root)
    os_type_el = root.find("os/type")
    cpu = root.find("cpu")
    return VMFacts(
        uuid=uuid.lower(),
        name=name,
        state=state,
        vcpus=vcpus,
        memory_max_mib=mem_max // 1024**2,
        memory_mib=mem_cur // 1024**2,
        cpu_model=_text(root, "cpu/model") or (cpu.get("mode") if cpu is not None else None),
        os_type=os_type_el.text if os_type_el is not None else None,
        arch=os_type_el.get("arch") if os_type_el is not None else None,
        autostart=autostart,
        persistent=persistent,
        is_template=is_template,
        disks=parse_disks(root),
        nics=parse_nics(root),
        snapshots=snapshots,
        meta=meta,
        meta_revision=parse_revision(meta_root),
    )
