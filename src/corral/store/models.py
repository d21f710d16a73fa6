"""Database tables. Kept apart from the API schemas and the domain dataclasses."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    Double,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from corral.store.types import UTCDateTime

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class Host(Base):
    __tablename__ = "hosts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    uri: Mapped[str] = mapped_column(String(2048))
    #: libvirt's host UUID (capabilities), None for the test driver or before the first answer.
    host_uuid: Mapped[str | None] = mapped_column(String(36))
    username: Mapped[str | None] = mapped_column(String(256))
    secret: Mapped[bytes | None] = mapped_column(LargeBinary)  # encrypted password
    status: Mapped[str] = mapped_column(String(32), default="never-synced")
    last_error: Mapped[str | None] = mapped_column(Text)
    last_sync_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    hostname: Mapped[str | None] = mapped_column(String(256))
    cpu_model: Mapped[str | None] = mapped_column(String(256))
    cpu_vendor: Mapped[str | None] = mapped_column(String(128))
    cpu_features: Mapped[list[Any]] = mapped_column(JSON, default=list)
    sockets: Mapped[int | None] = mapped_column(Integer)
    cores_per_socket: Mapped[int | None] = mapped_column(Integer)
    threads_per_core: Mapped[int | None] = mapped_column(Integer)
    cpus: Mapped[int | None] = mapped_column(Integer)
    mhz: Mapped[int | None] = mapped_column(Integer)
    memory_mib: Mapped[int | None] = mapped_column(BigInteger)
    arch: Mapped[str | None] = mapped_column(String(64))
    hypervisor_type: Mapped[str | None] = mapped_column(String(64))
    hypervisor_version: Mapped[str | None] = mapped_column(String(64))
    libvirt_version: Mapped[str | None] = mapped_column(String(64))
    storage_fingerprint: Mapped[str] = mapped_column(String(64), default="")

    pools: Mapped[list[Pool]] = relationship(back_populates="host", cascade="all, delete-orphan")
    networks: Mapped[list[Network]] = relationship(
        back_populates="host", cascade="all, delete-orphan"
    )


class VM(Base):
    __tablename__ = "vms"

    uuid: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(256))
    host_id: Mapped[int | None] = mapped_column(ForeignKey("hosts.id", ondelete="SET NULL"))
    state: Mapped[str] = mapped_column(String(32))
    state_since: Mapped[datetime] = mapped_column(UTCDateTime())
    vcpus: Mapped[int] = mapped_column(Integer)
    memory_max_mib: Mapped[int] = mapped_column(BigInteger)
    memory_mib: Mapped[int] = mapped_column(BigInteger)
    cpu_model: Mapped[str | None] = mapped_column(String(256))
    os_type: Mapped[str | None] = mapped_column(String(64))
    arch: Mapped[str | None] = mapped_column(String(64))
    autostart: Mapped[bool] = mapped_column(Boolean, default=False)
    persistent: Mapped[bool] = mapped_column(Boolean, default=True)
    is_template: Mapped[bool] = mapped_column(Boolean, default=False)
    # Device lists are read for one VM at a time, never for a listing: deferred, and read
    # together (one statement, not three) by whatever reads one of them.
    disks: Mapped[list[Any]] = mapped_column(JSON, default=list, deferred_group="devices")
    nics: Mapped[list[Any]] = mapped_column(JSON, default=list, deferred_group="devices")
    snapshots: Mapped[list[Any]] = mapped_column(JSON, default=list, deferred_group="devices")
    snapshot_count: Mapped[int] = mapped_column(Integer, default=0)
    disk_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    # ownership metadata
    owner: Mapped[str | None] = mapped_column(String(256))
    department: Mapped[str | None] = mapped_column(String(256))
    purpose: Mapped[str | None] = mapped_column(String(1024))
    project: Mapped[str | None] = mapped_column(String(256))
    environment: Mapped[str | None] = mapped_column(String(64))
    expires_on: Mapped[date | None] = mapped_column(Date)
    protection_tier: Mapped[str | None] = mapped_column(String(64))
    created_by: Mapped[str | None] = mapped_column(String(256))
    tags: Mapped[list[Any]] = mapped_column(JSON, default=list)
    # bookkeeping
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    fingerprint: Mapped[str] = mapped_column(String(64), default="")
    # Bumped by every metadata write Corral makes and stamped into the domain's <metadata>:
    # a sync never copies a domain's older metadata over a newer database write.
    meta_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    host: Mapped[Host | None] = relationship()

    # The common listings (live VMs by name, filtered by state, host, owner or
    # department) are each one ordered index range scan that stops at the page
    # size; counts are index-only. Those are partial indexes (live VMs only), so they are
    # created by migration 0001 alone: declared here, their dialect options would make every
    # command that opens the store import the PostgreSQL dialect (0.2 s of start-up).
    __table_args__ = (Index("ix_vms_deleted_at", "deleted_at"),)


class Event(Base):
    __tablename__ = "events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    kind: Mapped[str] = mapped_column(String(32), index=True)
    vm_uuid: Mapped[str | None] = mapped_column(String(36), index=True)
    host_name: Mapped[str | None] = mapped_column(String(128))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Pool(Base):
    __tablename__ = "pools"
    __table_args__ = (UniqueConstraint("host_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    host_id: Mapped[int] = mapped_column(ForeignKey("hosts.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(256))
    uuid: Mapped[str] = mapped_column(String(36))
    type: Mapped[str] = mapped_column(String(32))
    path: Mapped[str | None] = mapped_column(String(4096))
    active: Mapped[bool] = mapped_column(Boolean)
    capacity_bytes: Mapped[int] = mapped_column(BigInteger)
    allocation_bytes: Mapped[int] = mapped_column(BigInteger)
    available_bytes: Mapped[int] = mapped_column(BigInteger)
    # Pools of several hosts with the same key are one shared storage (see inventory.storage).
    storage_key: Mapped[str] = mapped_column(String(4200), default="", server_default="")

    host: Mapped[Host] = relationship(back_populates="pools")
    volumes: Mapped[list[Volume]] = relationship(
        back_populates="pool", cascade="all, delete-orphan"
    )


class Volume(Base):
    __tablename__ = "volumes"
    __table_args__ = (UniqueConstraint("pool_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    pool_id: Mapped[int] = mapped_column(ForeignKey("pools.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(256))
    path: Mapped[str] = mapped_column(String(4096))
    capacity_bytes: Mapped[int] = mapped_column(BigInteger)
    allocation_bytes: Mapped[int] = mapped_column(BigInteger)
    format: Mapped[str | None] = mapped_column(String(32))
    backing_path: Mapped[str | None] = mapped_column(String(4096))
    used_by: Mapped[str | None] = mapped_column(String(36))  # VM uuid; NULL = orphaned
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime())

    pool: Mapped[Pool] = relationship(back_populates="volumes")


class Network(Base):
    __tablename__ = "networks"
    __table_args__ = (UniqueConstraint("host_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    host_id: Mapped[int] = mapped_column(ForeignKey("hosts.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(256))
    uuid: Mapped[str] = mapped_column(String(36))
    active: Mapped[bool] = mapped_column(Boolean)
    bridge: Mapped[str | None] = mapped_column(String(64))
    forward_mode: Mapped[str | None] = mapped_column(String(32))

    host: Mapped[Host] = relationship(back_populates="networks")


class HostNetworkUsers(Base):
    """How many live VMs of a host have a NIC on one of its networks (by the network's name):
    kept by corral.store.network_users, read by the networks list. No row: none."""

    __tablename__ = "host_network_users"

    host_id: Mapped[int] = mapped_column(
        ForeignKey("hosts.id", ondelete="CASCADE"), primary_key=True
    )
    network: Mapped[str] = mapped_column(String(256), primary_key=True)
    vm_count: Mapped[int] = mapped_column(Integer)


class ApiToken(Base):
    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    prefix: Mapped[str] = mapped_column(String(16), index=True)
    token_hash: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class ReclaimCase(Base):
    """One VM's way through the reclamation workflow (see corral.engines.reclaim).

    ``pending`` is the write-ahead record of a step under way: it is committed
    before any outside action and cleared in the same commit as the new state,
    so a crash in between is resumed, and the step's actions check what is
    already done instead of doing it twice.
    """

    __tablename__ = "reclaim_cases"
    # At most one open case per VM: flagging twice is refused by the database too, through
    # the partial unique index uq_reclaim_cases_open_vm of migration 0002 (not declared here,
    # for the reason given at VM.__table_args__).

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    vm_uuid: Mapped[str] = mapped_column(String(36), index=True)
    vm_name: Mapped[str] = mapped_column(String(256))
    host_name: Mapped[str | None] = mapped_column(String(128))
    state: Mapped[str] = mapped_column(String(32), index=True)
    category: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(Text)
    evidence: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    owner: Mapped[str | None] = mapped_column(String(256))
    department: Mapped[str | None] = mapped_column(String(256))
    flagged_by: Mapped[str] = mapped_column(String(128))
    flagged_at: Mapped[datetime] = mapped_column(UTCDateTime())
    notified_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    notified_to: Mapped[str | None] = mapped_column(String(320))
    respond_by: Mapped[datetime | None] = mapped_column(UTCDateTime())
    response_token_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    extended_until: Mapped[date | None] = mapped_column(Date)
    extend_reason: Mapped[str | None] = mapped_column(Text)
    responded_by: Mapped[str | None] = mapped_column(String(320))
    quarantined_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    prior_state: Mapped[str | None] = mapped_column(String(32))
    prior_autostart: Mapped[bool | None] = mapped_column(Boolean)
    archived_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    archive_snapshot: Mapped[str | None] = mapped_column(String(256))
    archive_xml: Mapped[str | None] = mapped_column(Text)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    deleted_volumes: Mapped[list[Any]] = mapped_column(JSON, default=list)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    closed_by: Mapped[str | None] = mapped_column(String(320))
    currency: Mapped[str] = mapped_column(String(8), default="USD")
    monthly_cost: Mapped[float] = mapped_column(default=0.0)
    monthly_saving_off: Mapped[float] = mapped_column(default=0.0)
    pending: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # Optimistic locking: an UPDATE of a row someone changed since it was read fails.
    version: Mapped[int] = mapped_column(Integer)
    __mapper_args__ = {"version_id_col": version}

    approvals: Mapped[list[ReclaimApproval]] = relationship(
        back_populates="case", cascade="all, delete-orphan", order_by="ReclaimApproval.id"
    )


class ReclaimApproval(Base):
    __tablename__ = "reclaim_approvals"
    __table_args__ = (UniqueConstraint("case_id", "step", "approver"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("reclaim_cases.id", ondelete="CASCADE"))
    step: Mapped[str] = mapped_column(String(32))
    approver: Mapped[str] = mapped_column(String(128))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    note: Mapped[str | None] = mapped_column(Text)

    case: Mapped[ReclaimCase] = relationship(back_populates="approvals")


class Job(Base):
    """Work that takes seconds or more, run by the server's job runner (corral.services.jobs).

    ``params`` is the request as JSON, so a job still queued when the server
    stopped can be run again; ``result`` is the JSON of the kind's typed result
    and ``error`` a problem-details object. Listed newest first by (created_at, id).
    """

    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_created_at_id", "created_at", "id"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    kind: Mapped[str] = mapped_column(String(64), index=True)
    state: Mapped[str] = mapped_column(String(16), index=True)
    progress: Mapped[float] = mapped_column(default=0.0)
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    submitted_by: Mapped[str | None] = mapped_column(String(128))
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


# --- users, roles, departments, audit log (issue 10) ---------------------------------------


class User(Base):
    """A person or a robot that calls Corral; tokens belong to a user and carry its roles.

    ``password_hash`` is argon2 (None: the user signs in with tokens only); ``disabled_at``
    set stops every token of the user at once.
    """

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    email: Mapped[str | None] = mapped_column(String(320))
    password_hash: Mapped[str | None] = mapped_column(String(256))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    roles: Mapped[list[UserRole]] = relationship(
        cascade="all, delete-orphan", order_by="UserRole.role", lazy="selectin"
    )
    departments: Mapped[list[UserDepartment]] = relationship(
        cascade="all, delete-orphan", order_by="UserDepartment.department", lazy="selectin"
    )


class UserRole(Base):
    __tablename__ = "user_roles"
    __table_args__ = (UniqueConstraint("user_id", "role"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(32))


class UserDepartment(Base):
    """A department (tenant) the user belongs to: the same names as ``VM.department``."""

    __tablename__ = "user_departments"
    __table_args__ = (UniqueConstraint("user_id", "department"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    department: Mapped[str] = mapped_column(String(256))


class TokenOwner(Base):
    """Which user an API token belongs to (one row per token; kept apart from ``api_tokens``)."""

    __tablename__ = "token_owners"

    token_id: Mapped[int] = mapped_column(
        ForeignKey("api_tokens.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)


class AuditEntry(Base):
    """One write, in an append-only chain: ``hash`` covers the entry and the previous hash.

    ``seq`` counts from 1 without gaps; ``audit_head`` holds the newest seq and hash, and its
    row lock keeps concurrent writers in one chain (see corral.services.audit).
    """

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_at", "at"),)

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    actor: Mapped[str] = mapped_column(String(64), index=True)
    roles: Mapped[str] = mapped_column(String(128))
    origin: Mapped[str] = mapped_column(String(256))
    action: Mapped[str] = mapped_column(String(32))
    target: Mapped[str] = mapped_column(String(256), index=True)
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditHead(Base):
    """The one row naming the newest audit entry; writers lock it before they append."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))


class HAManagerStateRow(Base):
    """The HA manager's whole state after its last round (``ManagerState.to_dict()``), so a
    manager that dies is replaced by one that resumes (corral.engines.ha_manager)."""

    __tablename__ = "ha_manager_state"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    state: Mapped[dict[str, Any]] = mapped_column(JSON)
    #: The manager's clock at that round (seconds).
    round_t: Mapped[float] = mapped_column()
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class HAEventRow(Base):
    """One transition of the HA manager, in the order it happened."""

    __tablename__ = "ha_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    manager: Mapped[str] = mapped_column(String(64), index=True)
    t: Mapped[float] = mapped_column()
    kind: Mapped[str] = mapped_column(String(32), index=True)
    host: Mapped[str | None] = mapped_column(String(255))
    vm: Mapped[str | None] = mapped_column(String(255))
    detail: Mapped[str] = mapped_column(Text, default="")
    alert: Mapped[bool] = mapped_column(Boolean, default=False)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime())


# --- templates and provisioning (issue 10 item 5) -------------------------------------------


class TemplateRow(Base):
    """A catalog entry: a base image (pool and volume name) and the defaults of its VMs."""

    __tablename__ = "templates"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    pool: Mapped[str] = mapped_column(String(255))
    volume: Mapped[str] = mapped_column(String(255))
    vcpus: Mapped[int] = mapped_column(Integer)
    memory_mib: Mapped[int] = mapped_column(Integer)
    network: Mapped[str | None] = mapped_column(String(255))
    domain_type: Mapped[str] = mapped_column(String(16))
    machine: Mapped[str | None] = mapped_column(String(64))
    arch: Mapped[str] = mapped_column(String(32))
    kernel: Mapped[str | None] = mapped_column(String(1024))
    initrd: Mapped[str | None] = mapped_column(String(1024))
    cmdline: Mapped[str | None] = mapped_column(String(1024))
    description: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ProvisionRow(Base):
    """One provisioning attempt: the spec, where it got to, and what rollback left behind."""

    __tablename__ = "provisions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64), index=True)
    host: Mapped[str] = mapped_column(String(64))
    template: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), index=True)
    reason: Mapped[str | None] = mapped_column(Text)
    vm_uuid: Mapped[str | None] = mapped_column(String(36))
    created_by: Mapped[str] = mapped_column(String(64))
    request_id: Mapped[int | None] = mapped_column(Integer)
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    outcome: Mapped[dict[str, Any]] = mapped_column(JSON)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class AlertRow(Base):
    """One alert (corral.engines.alerting.model.Alert), keyed by its labels' fingerprint."""

    __tablename__ = "alerts"

    fingerprint: Mapped[str] = mapped_column(String(32), primary_key=True)
    rule: Mapped[str] = mapped_column(String(128))
    labels: Mapped[dict[str, Any]] = mapped_column(JSON)
    severity: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16), index=True)
    group_key: Mapped[str] = mapped_column(String(512))
    value: Mapped[float] = mapped_column(Double)
    summary: Mapped[str] = mapped_column(Text)
    started_at: Mapped[float] = mapped_column(Double)
    changed_at: Mapped[float] = mapped_column(Double)
    notified: Mapped[str | None] = mapped_column(String(16))
    acked_by: Mapped[str | None] = mapped_column(String(64))
    muted_by: Mapped[str | None] = mapped_column(String(256))


class AlertSilenceRow(Base):
    __tablename__ = "alert_silences"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    matchers: Mapped[dict[str, Any]] = mapped_column(JSON)
    ends_at: Mapped[float] = mapped_column(Double)
    comment: Mapped[str] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(64))
    expiry_noticed: Mapped[bool] = mapped_column(Boolean, default=False)


class AlertOutboxRow(Base):
    """One notification for one channel; sent once (``sent_at``), retried until then."""

    __tablename__ = "alert_outbox"
    __table_args__ = (UniqueConstraint("key", "channel", name="uq_alert_outbox_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[float] = mapped_column(Double)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[float] = mapped_column(Double)
    sent_at: Mapped[float | None] = mapped_column(Double, index=True)
    last_error: Mapped[str | None] = mapped_column(Text)


# --- VM requests, approvals, reservations, quotas (issue 10 items 2-4) ----------------------


class VMRequest(Base):
    """A request for ``count`` new VMs of one size from a template, and where it stands.

    ``reasons`` holds the last evaluation's reasons ({rule, text}); ``placement`` where each VM
    would go ({vm, host}); the capacity of an approved request is held in ``request_reservations``.
    """

    __tablename__ = "vm_requests"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    #: "vms" (new VMs) or "extension" (a longer lease for the VM ``vm_uuid``)
    kind: Mapped[str] = mapped_column(String(16), default="vms", server_default="vms")
    vm_uuid: Mapped[str | None] = mapped_column(String(36))
    requester: Mapped[str] = mapped_column(String(64), index=True)
    owner: Mapped[str] = mapped_column(String(256))
    department: Mapped[str] = mapped_column(String(256), index=True)
    purpose: Mapped[str] = mapped_column(String(1024))
    environment: Mapped[str] = mapped_column(String(64))
    template: Mapped[str] = mapped_column(String(256))
    count: Mapped[int] = mapped_column(Integer)
    vcpus: Mapped[int] = mapped_column(Integer)
    memory_mib: Mapped[int] = mapped_column(BigInteger)
    disk_gb: Mapped[float] = mapped_column()
    lease_days: Mapped[int] = mapped_column(Integer)
    monthly_cost: Mapped[float] = mapped_column()
    currency: Mapped[str] = mapped_column(String(8))
    state: Mapped[str] = mapped_column(String(16), index=True)
    approvals_needed: Mapped[int] = mapped_column(Integer, default=1)
    reasons: Mapped[list[Any]] = mapped_column(JSON, default=list)
    placement: Mapped[list[Any]] = mapped_column(JSON, default=list)
    capacity_status: Mapped[str] = mapped_column(String(16), default="")
    ha_host: Mapped[str | None] = mapped_column(String(255))
    failure_reason: Mapped[str | None] = mapped_column(Text)
    provisioned_vms: Mapped[list[Any]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    #: a blueprint request: its name, and its tiers as requested ({tier, template, count,
    #: vcpus, memory_mib, disk_gb, start_delay_s}); count and the size columns are then totals
    blueprint: Mapped[str | None] = mapped_column(String(64))
    tiers: Mapped[list[Any]] = mapped_column(JSON, default=list)


class RequestDecision(Base):
    """Who did what to a request and when: submit, approve, deny, cancel, expire, provision."""

    __tablename__ = "request_decisions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    request_id: Mapped[int] = mapped_column(
        ForeignKey("vm_requests.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(32))
    note: Mapped[str] = mapped_column(Text, default="")
    reasons: Mapped[list[Any]] = mapped_column(JSON, default=list)


class RequestReservation(Base):
    """Capacity booked on a host for one VM of an approved, not yet provisioned request."""

    __tablename__ = "request_reservations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    request_id: Mapped[int] = mapped_column(
        ForeignKey("vm_requests.id", ondelete="CASCADE"), index=True
    )
    host: Mapped[str] = mapped_column(String(255), index=True)
    vm: Mapped[str] = mapped_column(String(256))
    vcpus: Mapped[int] = mapped_column(Integer)
    memory_mib: Mapped[int] = mapped_column(BigInteger)
    disk_gb: Mapped[float] = mapped_column()


class Quota(Base):
    """A department's limits; a NULL column means no limit in that dimension."""

    __tablename__ = "quotas"

    department: Mapped[str] = mapped_column(String(256), primary_key=True)
    vcpus: Mapped[float | None] = mapped_column()
    memory_mib: Mapped[float | None] = mapped_column()
    storage_gb: Mapped[float | None] = mapped_column()
    vms: Mapped[float | None] = mapped_column()
    monthly_cost: Mapped[float | None] = mapped_column()
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_by: Mapped[str] = mapped_column(String(64))


class CapacityLock(Base):
    """The one row every approval decision locks first (row lock on PostgreSQL, the write lock
    on SQLite): decisions against quotas and capacity run one after another."""

    __tablename__ = "capacity_locks"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger, default=0)


# -- backup repository catalog (issue 12) -----------------------------------------------------
class BackupPointRow(Base):
    """A sealed restore point in the repository (its manifest is the source of truth)."""

    __tablename__ = "backup_points"

    id: Mapped[str] = mapped_column(String(80), primary_key=True)
    vm_uuid: Mapped[str] = mapped_column(String(36), index=True)
    vm_name: Mapped[str] = mapped_column(String(255))
    host: Mapped[str] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(16))
    parent_id: Mapped[str | None] = mapped_column(String(80))
    checkpoint: Mapped[str] = mapped_column(String(128))
    taken_at: Mapped[datetime] = mapped_column(UTCDateTime())
    bytes: Mapped[int] = mapped_column(BigInteger)
    fallback: Mapped[str | None] = mapped_column(Text)
    verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    verify_ok: Mapped[bool | None] = mapped_column(Boolean)
    consistency: Mapped[str] = mapped_column(String(16), default="crash")  # or application
    consistency_note: Mapped[str | None] = mapped_column(Text)


class BackupHoldRow(Base):
    """A restore point on legal hold: no retention run deletes it (nor a parent it needs)
    until the hold is released, which deletes the row (both audited)."""

    __tablename__ = "backup_point_holds"

    point_id: Mapped[str] = mapped_column(String(80), primary_key=True)
    vm_uuid: Mapped[str] = mapped_column(String(36))
    held_by: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text)
    held_at: Mapped[datetime] = mapped_column(UTCDateTime())


class BackupRunRow(Base):
    """One backup job of one VM: running, done, failed, or interrupted (its process died)."""

    __tablename__ = "backup_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    vm_uuid: Mapped[str] = mapped_column(String(36), index=True)
    vm_name: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16), index=True)
    kind: Mapped[str | None] = mapped_column(String(16))
    point_id: Mapped[str | None] = mapped_column(String(80))
    detail: Mapped[str] = mapped_column(Text, default="")
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class BackupRestoreRow(Base):
    """One restore: which point, where to, as what."""

    __tablename__ = "backup_restores"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    point_id: Mapped[str] = mapped_column(String(80), index=True)
    vm_uuid: Mapped[str] = mapped_column(String(36))
    mode: Mapped[str] = mapped_column(String(16))
    host: Mapped[str] = mapped_column(String(255))
    vm_name: Mapped[str] = mapped_column(String(255))
    new_uuid: Mapped[str] = mapped_column(String(36))
    seconds: Mapped[float] = mapped_column()
    restored_at: Mapped[datetime] = mapped_column(UTCDateTime())


# --- HA maintenance mode (issue 11 item 4) ----------------------------------------------------


class HAMaintenanceRow(Base):
    """A host an operator put in maintenance: the HA manager neither fences it nor places VMs
    on it. ``moves`` records the VMs live-migrated off it (VM -> host), which the manager
    applies to its own records."""

    __tablename__ = "ha_maintenance"

    manager: Mapped[str] = mapped_column(String(64), primary_key=True)
    host: Mapped[str] = mapped_column(String(255), primary_key=True)
    #: "entering" (migrations running, or some VM could not move) or "in" (host empty)
    state: Mapped[str] = mapped_column(String(16))
    moves: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    since: Mapped[datetime] = mapped_column(UTCDateTime())
    by: Mapped[str] = mapped_column(String(255), default="")
    #: the process carrying out the evacuation now (None: none), and its last sign of life
    runner: Mapped[str | None] = mapped_column(String(255), default=None)
    beat_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    #: an operator asked the runner to stop (corral ha maintenance abort)
    abort_requested: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    #: progress of the evacuation: VMs settled of those to move
    done: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    total: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


# -- forensic snapshots and rollbacks (issue 12 item 6) ------------------------------------
class ForensicRecordRow(Base):
    """A chain-of-custody record: a forensic snapshot (its files and hashes) or a rollback.
    Audited on creation, so the log holds who, when, why and every file's SHA-256."""

    __tablename__ = "forensic_records"

    id: Mapped[str] = mapped_column(String(80), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), index=True)  # snapshot, rollback
    vm_uuid: Mapped[str] = mapped_column(String(36), index=True)
    vm_name: Mapped[str] = mapped_column(String(255))
    host: Mapped[str] = mapped_column(String(255))
    actor: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    files: Mapped[list[Any]] = mapped_column(JSON)  # [{name, size, sha256, disk}]
    isolated_to: Mapped[str | None] = mapped_column(String(255))
    point_id: Mapped[str | None] = mapped_column(String(80))  # a rollback's restore point
    evidence_id: Mapped[str | None] = mapped_column(String(80))  # a rollback's snapshot
    doc: Mapped[dict[str, Any]] = mapped_column(JSON)  # the whole typed record


class ForensicDeliveryRow(Base):
    """A signed webhook delivery already accepted: a repeat of its body is refused."""

    __tablename__ = "forensic_deliveries"

    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


# -- an approved request's VMs, claimed before they are made (issue 10: request -> VM) --------
class RequestVMRow(Base):
    """One VM an approved request is making: where it goes, under which name, and whether it
    exists yet. Written when provisioning is claimed, so a retried or crashed run finds the
    same names and hosts and never makes a VM twice (``uuid`` set once it exists)."""

    __tablename__ = "request_vms"
    __table_args__ = (UniqueConstraint("request_id", "seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    request_id: Mapped[int] = mapped_column(
        ForeignKey("vm_requests.id", ondelete="CASCADE"), index=True
    )
    seq: Mapped[int] = mapped_column(Integer)  # the order they are made in
    tier: Mapped[str] = mapped_column(String(64), default="")
    name: Mapped[str] = mapped_column(String(64), unique=True)
    template: Mapped[str] = mapped_column(String(64))
    host: Mapped[str] = mapped_column(String(255))
    vcpus: Mapped[int] = mapped_column(Integer)
    memory_mib: Mapped[int] = mapped_column(BigInteger)
    disk_gb: Mapped[float] = mapped_column()
    #: claimed (to be made), created (exists: ``uuid``), removed (rolled back)
    state: Mapped[str] = mapped_column(String(16))
    uuid: Mapped[str | None] = mapped_column(String(36))
    #: who works on it: "host:pid" of the process, so a second run does not race a live one
    worker: Mapped[str] = mapped_column(String(128), default="")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class BlueprintRow(Base):
    """A blueprint: tiers of VMs requested and provisioned as one unit (domain.blueprint)."""

    __tablename__ = "blueprints"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    description: Mapped[str | None] = mapped_column(Text)
    tiers: Mapped[list[Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str] = mapped_column(String(64))


# --- HA drill runs, manual and scheduled (issue 11 item 5) ------------------------------------


class HADrillRunRow(Base):
    """One drill: which host, when, scheduled or asked for, and its report. ``running`` is 1
    while the drill runs and NULL after, so the unique (manager, running) pair lets only one
    drill run at a time in the whole fleet (NULLs never clash)."""

    __tablename__ = "ha_drill_runs"
    __table_args__ = (UniqueConstraint("manager", "running", name="uq_ha_drill_runs_manager"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    manager: Mapped[str] = mapped_column(String(64), index=True)
    host: Mapped[str] = mapped_column(String(255))
    scheduled: Mapped[bool] = mapped_column(Boolean)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    running: Mapped[int | None] = mapped_column(Integer, default=None)
    #: running | met | missed | failed (the drill could not run) | abandoned (its process died)
    outcome: Mapped[str] = mapped_column(String(16))
    report: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    detail: Mapped[str] = mapped_column(Text, default="")


# --- restore tests (issue 12: the RTO proven by booting the restored VM) ----------------------
class RestoreTestRow(Base):
    """A restore test: a point restored as a throwaway VM, booted on an isolated network,
    timed and removed; ``seconds`` (restore + boot) is the RTO measured, not assumed."""

    __tablename__ = "backup_restore_tests"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    vm_uuid: Mapped[str] = mapped_column(String(36), index=True)
    vm_name: Mapped[str] = mapped_column(String(255))
    point_id: Mapped[str] = mapped_column(String(80))
    host: Mapped[str] = mapped_column(String(255))
    network: Mapped[str] = mapped_column(String(64))  # the isolated network it booted on
    ok: Mapped[bool] = mapped_column(Boolean)
    detail: Mapped[str] = mapped_column(Text, default="")
    restore_seconds: Mapped[float] = mapped_column(default=0.0)
    seconds: Mapped[float] = mapped_column(default=0.0)  # restore + boot
    rto_minutes: Mapped[int | None] = mapped_column(Integer)
    rto_met: Mapped[bool | None] = mapped_column(Boolean)
    tested_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    #: ``running`` from the claim (written before the test acts) until its result, then
    #: ``ended``; ``worker`` (host:pid) runs it and ``files`` are the paths it writes (the
    #: restored disks, the consoles), so a test whose process died is cleaned up by the next
    state: Mapped[str] = mapped_column(String(16), default="ended", index=True)
    worker: Mapped[str] = mapped_column(String(128), default="")
    files: Mapped[list[str] | None] = mapped_column(JSON)


# --- blueprint units (issue 10 item 6) ------------------------------------------------------
class UnitRow(Base):
    """A deployed blueprint (a unit): its isolated network, its state, and the operation in
    progress with the process doing it, so a run that died is resumed, never doubled."""

    __tablename__ = "units"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    request_id: Mapped[int] = mapped_column(
        ForeignKey("vm_requests.id", ondelete="CASCADE"), unique=True
    )
    blueprint: Mapped[str] = mapped_column(String(64))
    department: Mapped[str] = mapped_column(String(64))
    network: Mapped[str] = mapped_column(String(64), unique=True)
    #: the hosts that hold the unit's network (and so its VMs)
    hosts: Mapped[list[Any]] = mapped_column(JSON)
    #: the blueprint's tiers as they were when the unit was made (start order, checks, hooks)
    tiers: Mapped[list[Any]] = mapped_column(JSON)
    #: deploying, running, stopped, failed, torn-down
    state: Mapped[str] = mapped_column(String(16))
    op: Mapped[str | None] = mapped_column(String(16))  # the operation in progress
    worker: Mapped[str] = mapped_column(String(128), default="")
    last_error: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class WebSession(Base):
    """A dashboard sign-in session (corral.services.web_sessions): the cookie's id only as its
    SHA-256, the CSRF token, who signed in (a snapshot of their principal, re-read every minute)."""

    __tablename__ = "web_sessions"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    csrf: Mapped[str] = mapped_column(String(64))
    credential: Mapped[str | None] = mapped_column(String(16))
    key: Mapped[str | None] = mapped_column(String(128))
    user_name: Mapped[str | None] = mapped_column(String(64))
    roles: Mapped[list[str]] = mapped_column(JSON, default=list)
    departments: Mapped[list[str]] = mapped_column(JSON, default=list)
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    checked_at: Mapped[datetime] = mapped_column(UTCDateTime())


# --- sharded host polling (issue 16 item 3) --------------------------------------------------
class PollState(Base):
    """A host's place in the polling cycle: when it is due, which poller process holds it (a
    lease: a process that dies leaves it to the others when ``lease_until`` passes), and the
    fingerprint of its last read, which lets an unchanged host skip the database work."""

    __tablename__ = "poll_state"

    host_id: Mapped[int] = mapped_column(
        ForeignKey("hosts.id", ondelete="CASCADE"), primary_key=True
    )
    due_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    #: a lifecycle event asked for a read before the schedule does
    wanted_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)
    lease_owner: Mapped[str | None] = mapped_column(String(128))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    read_by: Mapped[str | None] = mapped_column(String(128))
    reason: Mapped[str | None] = mapped_column(String(16))  # schedule or event
    fingerprint: Mapped[str] = mapped_column(String(64), default="")
    reads: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
