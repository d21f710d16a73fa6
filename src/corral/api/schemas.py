"""API schemas, apart from the database models: what goes in and what comes out."""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from corral.domain.model import Environment, ProtectionTier
from corral.engines.sprawl.model import Category

Text256 = Annotated[str, StringConstraints(max_length=256, strip_whitespace=True)]
Tag = Annotated[str, StringConstraints(min_length=1, max_length=64, strip_whitespace=True)]


def _no_markup(value: str | None) -> str | None:
    if value is not None and any(c in value for c in "<>"):
        raise ValueError("must not contain markup (< or >)")
    return value


class MetadataUpdate(BaseModel):
    """Fields to change; absent fields stay as they are, null clears one."""

    model_config = ConfigDict(extra="forbid")

    owner: Text256 | None = None
    department: Text256 | None = None
    purpose: Annotated[str, StringConstraints(max_length=1024, strip_whitespace=True)] | None = None
    project: Text256 | None = None
    environment: Environment | None = None
    expires_on: date | None = None
    protection_tier: ProtectionTier | None = None
    tags: Annotated[list[Tag], Field(max_length=50)] | None = None

    _check = field_validator("owner", "department", "purpose", "project")(_no_markup)

    @field_validator("tags")
    @classmethod
    def _tags(cls, value: list[str] | None) -> list[str] | None:
        for t in value or []:
            _no_markup(t)
        return value


class HostCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")]
    uri: Annotated[str, StringConstraints(min_length=1, max_length=2048)]
    username: Text256 | None = None
    password: Annotated[str, StringConstraints(max_length=1024)] | None = Field(
        default=None, repr=False
    )


class SyncRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    hosts: Annotated[list[Text256], Field(max_length=10000)] | None = None


class VMPublic(BaseModel):
    uuid: str
    name: str
    host: str | None
    state: str
    vcpus: int
    memory_mib: int
    memory_max_mib: int
    disk_gib: float
    snapshots: int
    owner: str | None
    department: str | None
    purpose: str | None
    project: str | None
    environment: str | None
    expires_on: str | None
    protection_tier: str | None
    tags: list[str]
    is_template: bool
    created_at: str
    state_since: str
    deleted_at: str | None


class VMPage(BaseModel):
    items: list[VMPublic]
    next_cursor: str | None
    total: int


class EventPublic(BaseModel):
    id: int
    at: str
    kind: str
    vm_uuid: str | None
    vm_name: str | None = None
    host: str | None
    details: dict[str, Any]


class VMDetail(VMPublic):
    cpu_model: str | None
    os_type: str | None
    arch: str | None
    autostart: bool
    persistent: bool
    created_by: str | None
    disks: list[dict[str, Any]]
    nics: list[dict[str, Any]]
    snapshot_list: list[dict[str, Any]]
    first_seen_at: str
    updated_at: str
    history: list[EventPublic]


class HostPublic(BaseModel):
    name: str
    uri: str
    status: str
    last_sync_at: str | None
    last_error: str | None
    hostname: str | None
    cpu_model: str | None
    cpu_vendor: str | None
    cpu_features: list[str]
    sockets: int | None
    cores_per_socket: int | None
    threads_per_core: int | None
    cpus: int | None
    mhz: int | None
    memory_mib: int | None
    arch: str | None
    hypervisor_type: str | None
    hypervisor_version: str | None
    libvirt_version: str | None
    has_credentials: bool
    vms: int = 0


# -- reclamation ------------------------------------------------------------------------
Reason = Annotated[str, StringConstraints(min_length=1, max_length=1024, strip_whitespace=True)]
ApprovableStep = Literal["quarantine", "archive", "delete"]


def _date_text(value: object) -> object:
    """Dates come as 'YYYY-MM-DD' text only: a number is not silently read as a timestamp."""
    if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        return value
    raise ValueError("must be a date written YYYY-MM-DD")


IsoDate = Annotated[date, BeforeValidator(_date_text)]
#: A person flags a VM under a sprawl category or under their own judgement ("manual").
FLAG_CATEGORIES = (*(c.value for c in Category), "manual")


class ReclaimFlag(BaseModel):
    """Open a reclamation case for one VM (by UUID or name)."""

    model_config = ConfigDict(extra="forbid")

    vm: Annotated[str, StringConstraints(min_length=1, max_length=256, strip_whitespace=True)]
    category: Annotated[str, StringConstraints(max_length=64)] = Field(
        description="A sprawl category (idle, powered_off, lease_expired ...) or 'manual'."
    )
    reason: Reason

    @field_validator("category")
    @classmethod
    def _known_category(cls, value: str) -> str:
        if value not in FLAG_CATEGORIES:
            raise ValueError(f"must be one of {', '.join(FLAG_CATEGORIES)}")
        return value


class ReclaimExtend(BaseModel):
    model_config = ConfigDict(extra="forbid")

    until: Annotated[IsoDate, Field(description="New expiry, YYYY-MM-DD.")]
    reason: Reason


class ReclaimApprove(BaseModel):
    model_config = ConfigDict(extra="forbid")

    step: ApprovableStep
    note: Annotated[str, StringConstraints(max_length=1024, strip_whitespace=True)] = ""


class ReclaimCancel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Reason


class ReclaimRun(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dry_run: bool = False


class ReclaimRespond(BaseModel):
    """The owner's answer with the token of the notification e-mail (no bearer token)."""

    model_config = ConfigDict(extra="forbid")

    token: Annotated[str, StringConstraints(min_length=1, max_length=256)]
    action: Literal["extend", "confirm"]
    until: IsoDate | None = None
    reason: Annotated[str, StringConstraints(max_length=1024, strip_whitespace=True)] = ""

    @model_validator(mode="after")
    def _extension_complete(self) -> ReclaimRespond:
        if self.action == "extend" and (self.until is None or not self.reason):
            raise ValueError("an extension needs 'until' (YYYY-MM-DD) and a 'reason'")
        return self


class ReclaimApproval(BaseModel):
    step: str
    approver: str
    at: str
    note: str


class ReclaimEvent(BaseModel):
    at: str
    kind: str
    case: int | None
    by: str | None
    details: dict[str, Any]


class ReclaimCasePublic(BaseModel):
    id: int
    vm: str
    vm_uuid: str
    host: str | None
    state: str
    category: str
    reason: str
    owner: str | None
    department: str | None
    flagged_by: str
    flagged_at: str
    notified_to: str | None
    respond_by: str | None
    extended_until: str | None
    extend_reason: str | None
    archive_snapshot: str | None
    deleted_volumes: list[str]
    pending: str | None
    currency: str
    monthly_cost: float
    monthly_saving_off: float
    realized: float
    saving_now_monthly: float
    evidence: dict[str, Any]
    next: str | None = None


class ReclaimCaseDetail(ReclaimCasePublic):
    approvals: list[ReclaimApproval]
    history: list[ReclaimEvent]


class ReclaimOutcome(BaseModel):
    case: int
    vm: str
    step: str
    result: Literal["done", "would-do", "waiting", "failed"]
    detail: str


class ReclaimRunResult(BaseModel):
    dry_run: bool
    mail: str
    outcomes: list[ReclaimOutcome]


class ReclaimSavings(BaseModel):
    currency: str
    realized: float
    monthly_now: float
    cases: list[ReclaimCasePublic]


class ReclaimAnswer(BaseModel):
    """What the owner's answer did (no more than the e-mail already told them)."""

    id: int
    vm: str
    state: str
    extended_until: str | None
