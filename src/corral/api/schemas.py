"""API schemas, apart from the database models: what goes in and what comes out."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    StrictBool,
    StringConstraints,
    field_validator,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import core_schema

from corral.domain.model import Environment, HostStatus, ProtectionTier, VMState
from corral.domain.reclaim import State
from corral.domain.sprawl import Category
from corral.domain.text import LINE_PATTERN, TEXT_PATTERN, bad_character
from corral.inventory.listing import SortKey


@dataclass(frozen=True)
class Printable:
    """Only text Corral can store and show (``corral.domain.text``), said in the schema too."""

    multiline: bool = False

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_after_validator_function(self._check, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        json_schema = handler(schema)
        json_schema["pattern"] = TEXT_PATTERN if self.multiline else LINE_PATTERN
        return json_schema

    def _check(self, value: str) -> str:
        ch = bad_character(value, multiline=self.multiline)
        if ch is not None:
            raise ValueError(f"contains a control or invalid character (U+{ord(ch):04X})")
        return value


#: One line of printable text (names, owners, tags, query values).
Line = Annotated[str, Printable()]
#: Printable text that may span lines (a purpose, a reason, a note).
FreeText = Annotated[str, Printable(multiline=True)]
Text256 = Annotated[Line, StringConstraints(max_length=256, strip_whitespace=True)]
Tag = Annotated[Line, StringConstraints(min_length=1, max_length=64, strip_whitespace=True)]


def _no_markup(value: str | None) -> str | None:
    if value is not None and any(c in value for c in "<>"):
        raise ValueError("must not contain markup (< or >)")
    return value


Purpose = Annotated[FreeText, StringConstraints(max_length=1024, strip_whitespace=True)]


class MetadataUpdate(BaseModel):
    """Fields to change; absent fields stay as they are, null clears one."""

    model_config = ConfigDict(extra="forbid")

    owner: Text256 | None = None
    department: Text256 | None = None
    purpose: (
        Annotated[FreeText, StringConstraints(max_length=1024, strip_whitespace=True)] | None
    ) = None
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
    uri: Annotated[Line, StringConstraints(min_length=1, max_length=2048)]
    username: Text256 | None = None
    password: Annotated[Line, StringConstraints(max_length=1024)] | None = Field(
        default=None, repr=False
    )


class HostImportEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")]
    uri: Annotated[Line, StringConstraints(min_length=1, max_length=2048)]
    username: Text256 | None = None


class HostImportRequest(BaseModel):
    """Hosts to register at once; passwords are set host by host (POST /hosts)."""

    model_config = ConfigDict(extra="forbid")

    hosts: Annotated[list[HostImportEntry], Field(min_length=1, max_length=10000)]
    skip_existing: bool = False


class HostImportResult(BaseModel):
    added: int
    skipped: list[str]


class SyncRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    hosts: Annotated[list[Text256], Field(max_length=10000)] | None = None


_Short = Annotated[Line | None, Field(max_length=256)]


class VMQuery(BaseModel):
    """The VM filter of ``GET /vms`` and ``GET /vms/count``, as query parameters (one model:
    FastAPI validates it at once rather than parameter by parameter, a good part of a list
    request's CPU)."""

    host: _Short = None
    state: VMState | None = None
    owner: _Short = None
    department: _Short = None
    project: _Short = None
    environment: _Short = None
    tag: Annotated[Line | None, Field(max_length=64)] = None
    q: Annotated[
        Line | None,
        Field(max_length=256, description="Text in a name or purpose, or the start of a UUID."),
    ] = None
    no_owner: bool = False
    no_purpose: bool = False
    template: bool | None = None
    older_than_days: Annotated[int | None, Field(ge=0, le=36500)] = None
    off_for_days: Annotated[int | None, Field(ge=0, le=36500)] = None
    expired: bool = False
    deleted: bool = False


class VMListQuery(VMQuery):
    """A page of the filtered list: keyset paging by ``cursor``, counted only when asked."""

    sort: SortKey = "name"
    order: Literal["asc", "desc"] = "asc"
    limit: Annotated[
        int, Field(ge=1, le=1000, description="At most this many items in one page.")
    ] = 100
    cursor: Annotated[
        str | None,
        Field(max_length=512, description="The previous page's 'next_cursor'; omit for the first."),
    ] = None
    count: bool = Field(
        default=False,
        description="Also count the whole list into 'total' (a second query; "
        "GET /api/v1/vms/count counts without a page).",
    )


class VMCountQuery(VMQuery):
    estimate: bool = Field(
        default=False,
        description="PostgreSQL: the planner's estimate from the table statistics, read "
        "without counting (fast at any size, may be off by a few per cent). SQLite counts.",
    )


class VMCountPublic(BaseModel):
    """How many VMs the filter selects."""

    count: int
    exact: bool = Field(description="False: PostgreSQL's planner estimate, not a count.")


class VMPublic(BaseModel):
    uuid: str
    name: str
    host: str | None
    state: VMState
    vcpus: int
    memory_mib: int
    memory_max_mib: int
    disk_gib: float
    disk_bytes: int
    snapshots: int
    owner: str | None
    department: str | None
    purpose: str | None
    project: str | None
    environment: str | None
    expires_on: date | None
    protection_tier: str | None
    tags: list[str]
    is_template: bool
    created_at: datetime
    state_since: datetime
    deleted_at: datetime | None


class EventPublic(BaseModel):
    id: int
    at: datetime
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
    first_seen_at: datetime
    updated_at: datetime
    history: list[EventPublic]


class HostPublic(BaseModel):
    name: str
    uri: str
    status: HostStatus
    last_sync_at: datetime | None
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
Reason = Annotated[
    FreeText, StringConstraints(min_length=1, max_length=1024, strip_whitespace=True)
]
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

    vm: Annotated[Line, StringConstraints(min_length=1, max_length=256, strip_whitespace=True)]
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
    note: Annotated[FreeText, StringConstraints(max_length=1024, strip_whitespace=True)] = ""


class ReclaimCancel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Reason


class ReclaimRun(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dry_run: StrictBool = False


class ReclaimRespond(BaseModel):
    """The owner's answer with the token of the notification e-mail (no bearer token)."""

    model_config = ConfigDict(extra="forbid")

    token: Annotated[Line, StringConstraints(min_length=1, max_length=256)]
    action: Literal["extend", "confirm"]
    until: IsoDate | None = None
    reason: Annotated[FreeText, StringConstraints(max_length=1024, strip_whitespace=True)] = ""

    @model_validator(mode="after")
    def _extension_complete(self) -> ReclaimRespond:
        if self.action == "extend" and (self.until is None or not self.reason):
            raise ValueError("an extension needs 'until' (YYYY-MM-DD) and a 'reason'")
        return self


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


class ReclaimAnswer(BaseModel):
    """What the owner's answer did (no more than the e-mail already told them)."""

    id: int
    vm: str
    state: State
    extended_until: date | None


# -- inventory lists and sync ------------------------------------------------------------
class NetworkPublic(BaseModel):
    host: str
    name: str
    active: bool
    forward_mode: str | None
    bridge: str | None
    vms: int = Field(description="Live VMs with a NIC on this network.")
    uuid: str | None


class VolumePublic(BaseModel):
    host: str = Field(description="The host of the VM using it, else the first host seeing it.")
    hosts: list[str] = Field(description="Every host that sees the volume (shared storage).")
    shared: bool
    pool: str
    name: str
    path: str | None
    format: str | None
    capacity_bytes: int
    allocation_bytes: int
    backing_path: str | None
    used_by: str | None = Field(description="UUID of the VM using the volume, if any.")
    used_by_name: str | None
    used_by_host: str | None
    orphaned: bool
    first_seen_at: datetime


class SyncHostResult(BaseModel):
    host: str
    status: HostStatus
    error: str | None
    vms_seen: int
    vms_changed: int


class SyncResult(BaseModel):
    started_at: datetime
    finished_at: datetime | None
    hosts: list[SyncHostResult]
    events: dict[str, int] = Field(description="How many events of each kind the sync recorded.")
