"""Making a VM for real: disk from a template, cloud-init seed, definition, start — or nothing.

``ProvisionService.provision(spec)`` is the one entry point (the CLI, the API and the request
workflow call it). The steps run one by one on the host the spec names, each through the
bounded hypervisor (a host that stops answering costs the host timeout), and each step that
created something is remembered; when a later step fails, those are undone newest first
(undefine the domain, delete the seed, delete the disk). A volume or domain that was already
there is never touched, and what rollback could not remove is named in the result.

Every attempt is a row of ``provisions`` (audited), from "running" to "succeeded" or
"failed" with the reason, so a crash half-way still leaves a record of what was started.
"""

from __future__ import annotations

import hashlib
import logging
import uuid as uuidlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, date, datetime
from typing import Any, cast

from sqlalchemy import select

from corral.domain.model import OwnerMeta
from corral.domain.provision import (
    DiskMode,
    ProvisionResult,
    ProvisionSpec,
    ProvisionStatus,
    Template,
    check_spec,
)
from corral.errors import ConflictError, CorralError, NotFoundError, ValidationError
from corral.hypervisor.newdomain import DomainPlan, domain_xml
from corral.hypervisor.provision import Provisioner, VolumeInfo
from corral.hypervisor.seed import build_seed_iso, seed_documents
from corral.inventory.service import Inventory
from corral.services.templates import TemplateService, check_boot_files
from corral.store import models as m

log = logging.getLogger(__name__)

GIB = 1024**3
RUNNING = "running"


def _quiet(_step: str) -> None:
    """No progress reports."""


def _now() -> datetime:
    return datetime.now(UTC)


def disk_volume_name(vm: str) -> str:
    return f"{vm}.qcow2"


def seed_volume_name(vm: str) -> str:
    return f"{vm}-cidata.iso"


@dataclass
class _Progress:
    """What the steps so far created on the host (what rollback must undo)."""

    pool: str
    volumes: list[str] = field(default_factory=list)
    uuid: str | None = None
    disk: VolumeInfo | None = None
    seed: VolumeInfo | None = None
    seed_written: bool = False
    started: bool = False
    notes: list[str] = field(default_factory=list)


class ProvisionFailed(Exception):
    """A step refused: the reason a user reads (wrapped so rollback can run first)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ProvisionService:
    def __init__(
        self,
        inventory: Inventory,
        templates: TemplateService | None = None,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self.inventory = inventory
        self.templates = templates or TemplateService(inventory.db)
        self.clock = clock

    # -- the entry point --------------------------------------------------------
    def provision(
        self, spec: ProvisionSpec, on_step: Callable[[str], None] | None = None
    ) -> ProvisionResult:
        """Create the VM ``spec`` describes; a failed result (never an exception) once the
        spec itself is valid. Raises ValidationError for an invalid spec.

        ``on_step`` is told each step done ("disk", "seed", "defined", "started"), for
        progress reports (a request's page, a test that stops a host half-way).
        """
        check_spec(spec)
        record_id = self._open_record(spec)
        progress = _Progress(pool="")
        hv: Provisioner | None = None
        try:
            template = self._template(spec)
            progress.pool = template.pool
            hv = cast(Provisioner, self.inventory.open_host(spec.host))
            self._refuse_clash(hv, spec)
            self._run(hv, spec, template, progress, on_step or _quiet)
        except (CorralError, ProvisionFailed) as exc:
            reason = exc.reason if isinstance(exc, ProvisionFailed) else exc.message
            undone, left = self._rollback(hv, progress) if hv is not None else ((), ())
            result = self._result(
                record_id, spec, progress, ProvisionStatus.failed, reason, undone, left
            )
        else:
            result = self._result(record_id, spec, progress, ProvisionStatus.succeeded)
            self._sync(spec.host, progress)
            result = replace(result, notes=tuple(progress.notes))
        self._close_record(result)
        return result

    # -- the steps ----------------------------------------------------------------
    def _run(
        self,
        hv: Provisioner,
        spec: ProvisionSpec,
        t: Template,
        progress: _Progress,
        step: Callable[[str], None],
    ) -> None:
        base = hv.volume_info(t.pool, t.volume)
        if base is None:
            raise ProvisionFailed(
                f"template {t.name}'s volume {t.volume} is not in pool {t.pool} on host "
                f"{spec.host}; copy the image there or choose another host."
            )
        size = max(base.capacity_bytes, (spec.disk_gib or 0) * GIB)
        name = disk_volume_name(spec.name)
        linked = spec.disk_mode is DiskMode.linked
        progress.disk = hv.clone_volume(t.pool, name, base, size, linked=linked)
        progress.volumes.append(name)
        step("disk")
        vm_uuid = str(uuidlib.uuid4())
        docs = seed_documents(vm_uuid, spec.name, spec.cloud_init)
        upload = hv.upload_volume(t.pool, seed_volume_name(spec.name), build_seed_iso(docs))
        progress.volumes.append(upload.volume.name)
        progress.seed, progress.seed_written = upload.volume, upload.written
        step("seed")
        if not upload.written:
            progress.notes.append(
                "the host's driver cannot upload volumes (libvirt's test driver): the seed "
                "volume exists but is empty, so the guest gets no cloud-init data."
            )
        plan = self._plan(spec, t, vm_uuid, progress.disk, upload.volume)
        progress.uuid = hv.define_domain(domain_xml(plan))
        step("defined")
        if spec.start:
            hv.start(progress.uuid)
            progress.started = True
            step("started")

    def _plan(
        self, spec: ProvisionSpec, t: Template, vm_uuid: str, disk: VolumeInfo, seed: VolumeInfo
    ) -> DomainPlan:
        meta = OwnerMeta(
            owner=spec.owner,
            department=spec.department,
            purpose=spec.purpose,
            environment=spec.environment,
            expires_on=spec.expires_on,
            created_by=spec.created_by,
            created_on=self.clock().date(),
        )
        return DomainPlan(
            name=spec.name,
            uuid=vm_uuid,
            vcpus=spec.vcpus or t.vcpus,
            memory_mib=spec.memory_mib or t.memory_mib,
            disk_path=disk.path,
            disk_format=disk.format or "qcow2",
            seed_path=seed.path,
            seed_readonly=spec.seed_readonly,
            network=spec.network or t.network,
            extra_networks=spec.extra_networks,
            meta=meta,
            domain_type=t.domain_type,
            arch=t.arch,
            machine=t.machine,
            kernel=t.kernel,
            initrd=t.initrd,
            cmdline=t.cmdline,
        )

    def _template(self, spec: ProvisionSpec) -> Template:
        try:
            t = self.templates.get(spec.template)
            # checked again: a template stored under another boot folder setting
            check_boot_files(t, self.templates.boot_dir)
        except (NotFoundError, ValidationError) as exc:
            raise ProvisionFailed(f"template {spec.template}: {exc.message}") from None
        return t

    def _refuse_clash(self, hv: Provisioner, spec: ProvisionSpec) -> None:
        with self.inventory.db.session() as s:
            known = s.scalar(
                select(m.VM.uuid).where(m.VM.name == spec.name, m.VM.deleted_at.is_(None))
            )
        if known is not None:
            raise ConflictError(f"a VM named {spec.name} already exists (UUID {known}).")
        if hv.domain_named(spec.name) is not None:
            raise ConflictError(f"host {spec.host} already has a domain named {spec.name}.")

    # -- rollback -----------------------------------------------------------------
    def _rollback(
        self, hv: Provisioner, progress: _Progress
    ) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """Undo every step that created something, newest first; (undone, left behind)."""
        made = [f"domain {progress.uuid}"] if progress.uuid is not None else []
        made += [f"volume {progress.pool}/{name}" for name in reversed(progress.volumes)]
        return _undo(hv, made)

    def clean_up(self, record_id: int) -> ProvisionResult:
        """Remove what a failed attempt left behind (its host stopped answering half-way),
        now that the host answers again; the record keeps what still could not go."""
        with self.inventory.db.session() as s:
            row = s.get(m.ProvisionRow, record_id)
            if row is None:
                raise NotFoundError(f"no provisioning attempt {record_id}.")
            before = _row_result(row)
        if not before.leftovers:
            return before
        hv = cast(Provisioner, self.inventory.open_host(before.host))
        undone, left = _undo(hv, list(before.leftovers))
        after = replace(before, rolled_back=before.rolled_back + undone, leftovers=left)
        self._close_record(after)
        return after

    # -- the record -----------------------------------------------------------------
    def _open_record(self, spec: ProvisionSpec) -> int:
        with self.inventory.db.session() as s:
            row = m.ProvisionRow(
                name=spec.name,
                host=spec.host,
                template=spec.template,
                status=RUNNING,
                created_by=spec.created_by,
                request_id=spec.request_id,
                spec=_stored_spec(spec),
                outcome={},
                started_at=self.clock(),
            )
            s.add(row)
            s.flush()
            return row.id

    def _close_record(self, result: ProvisionResult) -> None:
        with self.inventory.db.session() as s:
            row = s.get(m.ProvisionRow, result.id)
            if row is None:
                return
            row.status = result.status.value
            row.reason = result.reason
            row.vm_uuid = result.uuid
            row.outcome = _plain(asdict(result))
            row.finished_at = self.clock()

    def _result(
        self,
        record_id: int,
        spec: ProvisionSpec,
        progress: _Progress,
        status: ProvisionStatus,
        reason: str | None = None,
        undone: tuple[str, ...] = (),
        left: tuple[str, ...] = (),
    ) -> ProvisionResult:
        ok = status is ProvisionStatus.succeeded
        return ProvisionResult(
            id=record_id,
            status=status,
            name=spec.name,
            host=spec.host,
            template=spec.template,
            uuid=progress.uuid if ok else None,
            disk_path=progress.disk.path if ok and progress.disk else None,
            seed_path=progress.seed.path if ok and progress.seed else None,
            seed_written=progress.seed_written and ok,
            started=progress.started and ok,
            reason=reason,
            rolled_back=undone,
            leftovers=left,
            notes=tuple(progress.notes),
        )

    def _sync(self, host: str, progress: _Progress) -> None:
        """Read the host again so the new VM is in the inventory at once (best effort)."""
        try:
            self.inventory.sync([host])
        except CorralError as exc:
            progress.notes.append(f"the inventory was not updated ({exc.message}); run a sync.")

    def history(self, limit: int = 100, *, before: int | None = None) -> list[ProvisionResult]:
        """The newest attempts first (those older than attempt ``before``), as their results."""
        with self.inventory.db.session() as s:
            q = select(m.ProvisionRow).order_by(m.ProvisionRow.id.desc()).limit(limit)
            if before is not None:
                q = q.where(m.ProvisionRow.id < before)
            return [_row_result(r) for r in s.scalars(q)]


def _stored_spec(spec: ProvisionSpec) -> dict[str, Any]:
    """The spec as kept with the attempt. User data may hold passwords or tokens (a
    cloud-config's ``chpasswd``, a script's API key), so only its digest and size are kept."""
    kept: dict[str, Any] = _plain(asdict(spec))
    user_data = spec.cloud_init.user_data
    if user_data is not None:
        data = user_data.encode()
        kept["cloud_init"]["user_data"] = {
            "sha256": hashlib.sha256(data).hexdigest(),
            "bytes": len(data),
        }
    return kept


def _undo(hv: Provisioner, made: list[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Remove each object ("domain UUID", "volume POOL/NAME"), in order; (undone, left).

    A domain goes without its storage: its volumes are removed by name, so a volume that was
    there before the attempt is never touched."""
    undone: list[str] = []
    left: list[str] = []
    for what in made:
        kind, _, ref = what.partition(" ")
        try:
            if kind == "domain":
                hv.delete_vm(ref, delete_storage=False)
            else:
                pool, _, name = ref.partition("/")
                hv.delete_volume(pool, name)
            undone.append(what)
        except CorralError as exc:
            log.warning("rollback could not remove %s: %s", what, exc.message)
            left.append(what)
    return tuple(undone), tuple(left)


def _row_result(row: m.ProvisionRow) -> ProvisionResult:
    out: dict[str, Any] = dict(row.outcome or {})
    if not out:  # still running, or the process died before it finished
        return ProvisionResult(
            id=row.id,
            status=ProvisionStatus.failed,
            name=row.name,
            host=row.host,
            template=row.template,
            reason="the attempt has not finished (or its process ended before it did).",
        )
    out["status"] = ProvisionStatus(out["status"])
    for key in ("rolled_back", "leftovers", "notes"):
        out[key] = tuple(out.get(key) or ())
    return ProvisionResult(**out)


def _plain(value: object) -> Any:
    """JSON-ready: dates as ISO text, enums as values, tuples as lists."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    if hasattr(value, "value") and not isinstance(value, int | str):
        return value.value
    return value


__all__ = ["ProvisionFailed", "ProvisionService", "disk_volume_name", "seed_volume_name"]
