"""The template catalog: base images (pool volumes) new VMs are made from.

A template is stored by name in the database, so every interface and the request workflow
see the same catalog; adding, changing and removing one is audited like every other write.
Whether its volume exists is asked of a host when a VM is made from it (the same catalog
serves every host whose pool of that name holds the image).
"""

from __future__ import annotations

import posixpath
from dataclasses import asdict, fields, replace
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from corral.domain.provision import MAX_MEMORY_MIB, MAX_VCPUS, Template, check_name
from corral.domain.text import check_text
from corral.errors import ConflictError, NotFoundError, ValidationError
from corral.store import models as m
from corral.store.db import Database

DOMAIN_TYPES = ("kvm", "qemu")


def _row_to_template(row: m.TemplateRow) -> Template:
    return Template(
        name=row.name,
        pool=row.pool,
        volume=row.volume,
        vcpus=row.vcpus,
        memory_mib=row.memory_mib,
        network=row.network,
        domain_type=row.domain_type,
        machine=row.machine,
        arch=row.arch,
        kernel=row.kernel,
        initrd=row.initrd,
        cmdline=row.cmdline,
        description=row.description,
    )


def check_boot_files(t: Template, boot_dir: PurePosixPath | None) -> None:
    """A direct-boot kernel and initrd are read by the hypervisor as root, so they may only
    name files under the configured boot folder (``boot_dir``, CORRAL_BOOT_DIR), spelled
    plainly: no ``..``, no doubled or trailing slash. Without the setting, direct kernel boot
    is off. (The files are on the hosts, so the check is of the path as written.)"""
    for what, path in (("kernel", t.kernel), ("initrd", t.initrd)):
        if path is None:
            continue
        check_text(path, what)
        if boot_dir is None:
            raise ValidationError(
                f"direct kernel boot is off: the {what} may only be a file under the boot "
                "folder, and none is set (the setting boot_dir, CORRAL_BOOT_DIR)."
            )
        if not path.startswith("/") or posixpath.normpath(path) != path:
            raise ValidationError(f"the {what} is a plain absolute path (no '..', no '//').")
        if not PurePosixPath(path).is_relative_to(boot_dir) or PurePosixPath(path) == boot_dir:
            raise ValidationError(f"the {what} must be a file under the boot folder {boot_dir}.")


def check_template(t: Template, boot_dir: PurePosixPath | None = None) -> Template:
    """A template whose every field can be written into a volume lookup and a domain."""
    check_name(t.name, "the template name")
    check_name(t.volume, "the template volume")
    check_name(t.pool, "the storage pool")
    if t.network is not None:
        check_name(t.network, "the network")
    if not 1 <= t.vcpus <= MAX_VCPUS:
        raise ValidationError(f"vcpus must be between 1 and {MAX_VCPUS}.")
    if not 64 <= t.memory_mib <= MAX_MEMORY_MIB:
        raise ValidationError(f"memory must be between 64 and {MAX_MEMORY_MIB} MiB.")
    if t.domain_type not in DOMAIN_TYPES:
        raise ValidationError(f"the domain type is one of {', '.join(DOMAIN_TYPES)}.")
    for what, value in (("machine", t.machine), ("arch", t.arch)):
        if value is not None:
            check_text(value, what)
    check_boot_files(t, boot_dir)
    if t.initrd and not t.kernel:
        raise ValidationError("an initrd needs a kernel (direct kernel boot).")
    for what, text in (("cmdline", t.cmdline), ("description", t.description)):
        if text is not None:
            check_text(text, what, multiline=what == "description")
    return t


_FIELDS = {f.name for f in fields(Template)}
_INTS = ("vcpus", "memory_mib")


def template_from_mapping(
    data: object, source: str, boot_dir: PurePosixPath | None = None
) -> Template:
    """A template from a mapping (a catalog file's entry, a request body), checked."""
    if not isinstance(data, dict):
        raise ValidationError(f"{source}: a template is a mapping of its fields.")
    unknown = sorted(set(map(str, data)) - _FIELDS)
    if unknown:
        raise ValidationError(f"{source}: unknown template field {unknown[0]!r}.")
    for key in ("name", "pool", "volume"):
        if not isinstance(data.get(key), str):
            raise ValidationError(f"{source}: the template field {key!r} is required text.")
    for key, value in data.items():
        if key in _INTS and (not isinstance(value, int) or isinstance(value, bool)):
            raise ValidationError(f"{source}: {key} must be a whole number.")
        if key not in _INTS and value is not None and not isinstance(value, str):
            raise ValidationError(f"{source}: {key} must be text.")
    try:
        return check_template(Template(**{str(k): v for k, v in data.items()}), boot_dir)
    except ValidationError as exc:
        raise ValidationError(f"{source}: {exc.message}") from None


class TemplateService:
    def __init__(self, db: Database, boot_dir: Path | None = None) -> None:
        self.db = db
        #: the only folder on the hosts a direct-boot kernel or initrd may come from
        self.boot_dir = PurePosixPath(boot_dir) if boot_dir is not None else None

    def add(self, template: Template) -> Template:
        check_template(template, self.boot_dir)
        with self.db.session() as s:
            if s.scalar(select(m.TemplateRow.id).where(m.TemplateRow.name == template.name)):
                raise ConflictError(f"a template named {template.name!r} already exists.")
            s.add(m.TemplateRow(**asdict(template), created_at=datetime.now(UTC)))
            try:
                s.flush()
            except IntegrityError:
                raise ConflictError(f"a template named {template.name!r} already exists.") from None
        return template

    def add_mapping(self, data: object, source: str) -> Template:
        """Add the template a mapping describes (a request body, a command line's fields)."""
        return self.add(template_from_mapping(data, source, self.boot_dir))

    def import_catalog(self, data: object, source: str) -> list[Template]:
        """Add every template of a catalog (``templates:`` list), all or none: each entry is
        checked, and a name already in the catalog is refused, before the first is added."""
        entries = data.get("templates") if isinstance(data, dict) else None
        if not isinstance(entries, list) or not entries:
            raise ValidationError(f"{source}: expected 'templates:' with a list of templates.")
        found = [
            template_from_mapping(e, f"{source} entry {i}", self.boot_dir)
            for i, e in enumerate(entries, 1)
        ]
        names = [t.name for t in found]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValidationError(f"{source}: template {repeated[0]!r} is listed twice.")
        with self.db.session() as s:
            known = set(s.scalars(select(m.TemplateRow.name).where(m.TemplateRow.name.in_(names))))
            if known:
                raise ConflictError(
                    f"{source}: template {sorted(known)[0]!r} already exists; nothing was added."
                )
            now = datetime.now(UTC)
            s.add_all(m.TemplateRow(**asdict(t), created_at=now) for t in found)
        return found

    def from_vm(self, name: str, vm_ref: str, **overrides: object) -> Template:
        """A template whose base image is the first disk of a VM in the inventory (a template
        domain, typically): that disk's pool volume, with the VM's size as the defaults."""
        from corral.inventory.service import Inventory

        with self.db.session() as s:
            vm, _host = Inventory.vm_row(s, vm_ref)
            paths = [d.get("path") for d in vm.disks or [] if d.get("device", "disk") == "disk"]
            path = next((p for p in paths if p), None)
            found = (
                s.execute(
                    select(m.Volume.name, m.Pool.name)
                    .join(m.Pool, m.Volume.pool_id == m.Pool.id)
                    .where(m.Volume.path == path, m.Pool.host_id == vm.host_id)
                ).first()
                if path
                else None
            )
            if found is None:
                raise ValidationError(
                    f"VM {vm.name}'s first disk is not a volume of a storage pool Corral knows; "
                    "a template needs a pool volume (sync the host, or add it by pool and volume)."
                )
            base = Template(
                name=name,
                pool=found[1],
                volume=found[0],
                vcpus=vm.vcpus,
                memory_mib=max(64, vm.memory_max_mib),
                description=f"from VM {vm.name} ({vm.uuid})",
            )
        return self.add(replace(base, **overrides))  # type: ignore[arg-type]

    def get(self, name: str) -> Template:
        with self.db.session() as s:
            return _row_to_template(self._row(s, name))

    def all(self) -> list[Template]:
        with self.db.session() as s:
            rows = s.scalars(select(m.TemplateRow).order_by(m.TemplateRow.name))
            return [_row_to_template(r) for r in rows]

    def update(self, name: str, **changes: object) -> Template:
        with self.db.session() as s:
            row = self._row(s, name)
            changed = replace(_row_to_template(row), **changes)  # type: ignore[arg-type]
            new = check_template(changed, self.boot_dir)
            for key, value in asdict(new).items():
                setattr(row, key, value)
            return new

    def remove(self, name: str) -> None:
        """Forget a template; VMs already made from it keep their disks (an overlay keeps
        needing the volume, which stays in its pool)."""
        with self.db.session() as s:
            s.delete(self._row(s, name))

    @staticmethod
    def _row(s: Session, name: str) -> m.TemplateRow:
        row = s.scalar(select(m.TemplateRow).where(m.TemplateRow.name == name))
        if row is None:
            raise NotFoundError(f"no template named {name[:64]!r}; see 'corral template list'.")
        return row


__all__ = ["TemplateService", "check_template", "template_from_mapping"]
