"""The template catalog and provisioning over REST: thin calls to the services.

Reading the catalog needs ``fleet.read`` (every role); changing it and creating VMs need
``vm.provision`` (operators and administrators; requesters get VMs through requests). The
creator recorded in the VM's metadata is the caller, never a field of the body.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, status
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from corral.api.deps import require
from corral.api.pagination import Cursor, Limit, Page, decode_cursor, encode_cursor, paginate
from corral.api.problems import error_responses
from corral.api.schemas import FreeText, Line, Text256
from corral.domain.access import Permission as Perm
from corral.domain.access import Principal
from corral.domain.provision import (
    CloudInit,
    DiskMode,
    ProvisionResult,
    ProvisionSpec,
    Template,
)
from corral.errors import ValidationError
from corral.services.provision import ProvisionService
from corral.services.templates import TemplateService

router = APIRouter(prefix="/api/v1", tags=["provisioning"])

Name = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")]
PathName = Annotated[Line, Path(max_length=64)]


class TemplateCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    pool: Name
    volume: Name
    vcpus: int = Field(default=1, ge=1, le=512)
    memory_mib: int = Field(default=1024, ge=64)
    network: Name | None = None
    domain_type: Annotated[Line, StringConstraints(max_length=16)] = "kvm"
    machine: Annotated[Line, StringConstraints(max_length=64)] | None = None
    arch: Annotated[Line, StringConstraints(max_length=32)] = "x86_64"
    kernel: Annotated[Line, StringConstraints(max_length=1024)] | None = None
    initrd: Annotated[Line, StringConstraints(max_length=1024)] | None = None
    cmdline: Annotated[Line, StringConstraints(max_length=1024)] | None = None
    description: Annotated[FreeText, StringConstraints(max_length=4096)] | None = None


class CloudInitBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    hostname: Annotated[Line, StringConstraints(max_length=253)] | None = None
    ssh_authorized_keys: list[Annotated[Line, StringConstraints(max_length=16384)]] = Field(
        default_factory=list, max_length=32
    )
    network_config: dict[str, Any] | None = None
    user_data: Annotated[FreeText, StringConstraints(max_length=65536)] | None = None


class ProvisionBody(BaseModel):
    """A VM to create. ``vcpus``, ``memory_mib`` and ``network`` default to the template's."""

    model_config = ConfigDict(extra="forbid")

    name: Name
    template: Name
    host: Name
    owner: Text256
    department: Text256
    expires_on: date | None = None
    vcpus: int | None = Field(default=None, ge=1)
    memory_mib: int | None = Field(default=None, ge=1)
    disk_gib: int | None = Field(default=None, ge=1)
    network: Name | None = None
    disk_mode: DiskMode = DiskMode.linked
    purpose: Annotated[FreeText, StringConstraints(max_length=1024)] | None = None
    environment: Annotated[Line, StringConstraints(max_length=64)] | None = None
    cloud_init: CloudInitBody = Field(default_factory=CloudInitBody)
    start: bool = True


def _templates(request: Request) -> TemplateService:
    return TemplateService(request.app.state.inventory.db, request.app.state.settings.boot_dir)


@router.get("/templates", response_model=Page[Template], responses=error_responses(401, 403, 422))
def list_templates(
    request: Request,
    _who: Annotated[Principal, require(Perm.fleet_read)],
    limit: Limit = 100,
    cursor: Cursor = None,
) -> Page[Template]:
    rows = sorted(_templates(request).all(), key=lambda t: t.name)
    return paginate(rows, lambda t: (t.name,), limit, cursor)


@router.get(
    "/templates/{name}", response_model=Template, responses=error_responses(401, 403, 404, 422)
)
def get_template(
    request: Request, name: PathName, _who: Annotated[Principal, require(Perm.fleet_read)]
) -> Template:
    return _templates(request).get(name)


@router.post(
    "/templates",
    response_model=Template,
    status_code=status.HTTP_201_CREATED,
    responses=error_responses(401, 403, 409, 413, 422),
)
def add_template(
    request: Request,
    body: TemplateCreate,
    _who: Annotated[Principal, require(Perm.vm_provision)],
) -> Template:
    return _templates(request).add_mapping(body.model_dump(), "the template")


@router.delete(
    "/templates/{name}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=error_responses(401, 403, 404, 422),
)
def remove_template(
    request: Request, name: PathName, _who: Annotated[Principal, require(Perm.vm_provision)]
) -> None:
    _templates(request).remove(name)


@router.post(
    "/provisions",
    response_model=ProvisionResult,
    status_code=status.HTTP_201_CREATED,
    responses=error_responses(401, 403, 413, 422),
)
def provision(
    request: Request,
    body: ProvisionBody,
    who: Annotated[Principal, require(Perm.vm_provision)],
) -> ProvisionResult:
    """Create a VM. The answer is the attempt's record (201 either way): ``status`` is
    ``succeeded``, or ``failed`` with the ``reason`` and what rollback removed."""
    fields = body.model_dump(exclude={"cloud_init"})
    ci = body.cloud_init
    spec = ProvisionSpec(
        **fields,
        created_by=who.user,
        cloud_init=CloudInit(
            hostname=ci.hostname,
            ssh_authorized_keys=tuple(ci.ssh_authorized_keys),
            network_config=ci.network_config,
            user_data=ci.user_data,
        ),
    )
    inventory = request.app.state.inventory
    return ProvisionService(inventory, _templates(request)).provision(spec)


@router.get(
    "/provisions", response_model=Page[ProvisionResult], responses=error_responses(401, 403, 422)
)
def provision_history(
    request: Request,
    _who: Annotated[Principal, require(Perm.ops_read)],
    limit: Limit = 100,
    cursor: Cursor = None,
) -> Page[ProvisionResult]:
    """The newest provisioning attempts first, page by page (keyset on the attempt's id)."""
    before = _attempt_cursor(cursor) if cursor else None
    rows = ProvisionService(request.app.state.inventory).history(limit + 1, before=before)
    more = len(rows) > limit
    rows = rows[:limit]
    last = rows[-1].id if rows else None
    next_cursor = None
    if more and last is not None:
        next_cursor = encode_cursor((last,))
    return Page(items=rows, next_cursor=next_cursor)


def _attempt_cursor(cursor: str) -> int:
    key = decode_cursor(cursor)
    if len(key) != 1 or not isinstance(key[0], int):
        raise ValidationError("the pagination cursor is not valid; start again without one.")
    return key[0]


__all__ = ["router"]
