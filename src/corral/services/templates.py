"""The template catalog: base images (pool volumes) new VMs are made from.

A template is stored by name in the database, so every interface and the request workflow
see the same catalog; adding, changing and removing one is audited like every other write.
Whether its volume exists is asked of a host when a VM is made from it (the same catalog
serves every host whose pool of that name holds the image).
"""

from __future__ import annotations

from dataclasses import asdict, replace
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

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


def check_template(t: Template) -> Template:
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
    for what, path in (("kernel", t.kernel), ("initrd", t.initrd)):
        if path is not None and not path.startswith("/"):
            raise ValidationError(f"the {what} is an absolute path on the host.")
    if t.initrd and not t.kernel:
        raise ValidationError("an initrd needs a kernel (direct kernel boot).")
    for what, text in (("cmdline", t.cmdline), ("description", t.description)):
        if text is not None:
            check_text(text, what, multiline=what == "description")
    return t


class TemplateService:
    def __init__(self, db: Database) -> None:
        self.db = db

    def add(self, template: Template) -> Template:
        check_template(template)
        with self.db.session() as s:
            if s.scalar(select(m.TemplateRow.id).where(m.TemplateRow.name == template.name)):
                raise ConflictError(f"a template named {template.name!r} already exists.")
            s.add(m.TemplateRow(**asdict(template), created_at=datetime.now(UTC)))
            try:
                s.flush()
            except IntegrityError:
                raise ConflictError(f"a template named {template.name!r} already exists.") from None
        return template

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
            new = check_template(replace(_row_to_template(row), **changes))  # type: ignore[arg-type]
            for key, value in asdict(new).items():
                setattr(row, key, value)
            return new

    def remove(self, name: str) -> None:
        """Forget a template; VMs already made from it keep their disks (an overlay keeps
        needing the volume, which stays in its pool)."""
        with self.db.session() as s:
            s.delete(self._row(s, name))

    @staticmethod
    def _row(s: object, name: str) -> m.TemplateRow:
        row = s.scalar(select(m.TemplateRow).where(m.TemplateRow.name == name))  # type: ignore[attr-defined]
        if row is None:
            raise NotFoundError(f"no template named {name[:64]!r}; see 'corral template list'.")
        return row  # type: ignore[no-any-return]


__all__ = ["TemplateService", "check_template"]
