"""What a new VM is made from and what making it gave: templates, the spec, the result.

These are the plain types the provisioning service takes and returns, so that the request
workflow (approvals, quotas) can build a :class:`ProvisionSpec`, hand it over and keep the
:class:`ProvisionResult` without knowing anything about libvirt. ``check_spec`` is the one
place a spec's fields are validated; every interface calls the service, which calls it.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from corral.domain.text import check_text
from corral.errors import ValidationError

#: A VM, template or volume name: what libvirt, a file system and a hostname all accept.
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
HOSTNAME_RE = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)
SSH_KEY_RE = re.compile(
    r"^(ssh-(rsa|ed25519|dss)|ecdsa-sha2-nistp(256|384|521)|sk-\S+) [A-Za-z0-9+/=]+( [^\n]*)?$"
)
MAX_VCPUS = 512
MAX_MEMORY_MIB = 16 * 1024 * 1024
MAX_DISK_GIB = 64 * 1024
MAX_USER_DATA_BYTES = 64 * 1024  # what cloud-init itself accepts from a NoCloud seed, roughly


class DiskMode(enum.StrEnum):
    """How the new disk relates to the template's volume."""

    linked = "linked"  # a qcow2 overlay whose backing store is the template's volume
    copy = "copy"  # a full, independent copy of the template's volume


class ProvisionStatus(enum.StrEnum):
    succeeded = "succeeded"
    failed = "failed"


@dataclass(frozen=True, slots=True)
class Template:
    """A base image in a storage pool, with the defaults a VM made from it gets.

    The pool and volume are looked up by name on the host the VM goes to, so one catalog
    entry serves every host whose pool of that name holds the image. ``kernel``, ``initrd``
    and ``cmdline`` (paths on the host) make it a direct-kernel-boot template; without them
    the guest boots from its disk.
    """

    name: str
    pool: str
    volume: str
    vcpus: int = 1
    memory_mib: int = 1024
    network: str | None = None
    domain_type: str = "kvm"  # "qemu" for software emulation (TCG)
    machine: str | None = None
    arch: str = "x86_64"
    kernel: str | None = None
    initrd: str | None = None
    cmdline: str | None = None
    description: str | None = None


@dataclass(frozen=True, slots=True)
class CloudInit:
    """What the guest's cloud-init NoCloud seed tells it.

    ``network_config`` is cloud-init's network configuration (version 1 or 2) as data;
    ``user_data`` is passed as written (a ``#cloud-config`` document or a script).
    """

    hostname: str | None = None
    ssh_authorized_keys: tuple[str, ...] = ()
    network_config: dict[str, Any] | None = None
    user_data: str | None = None


@dataclass(frozen=True, slots=True)
class ProvisionSpec:
    """One VM to create: from which template, how big, where, for whom, until when.

    ``vcpus``, ``memory_mib`` and ``network`` default to the template's; ``disk_gib``
    to the template volume's size (a disk is never made smaller than its template).
    """

    name: str
    template: str
    host: str
    owner: str
    department: str
    created_by: str
    expires_on: date | None = None
    vcpus: int | None = None
    memory_mib: int | None = None
    disk_gib: int | None = None
    network: str | None = None
    #: more networks the VM joins, each with a NIC of its own (a unit tier's ``networks``)
    extra_networks: tuple[str, ...] = ()
    disk_mode: DiskMode = DiskMode.linked
    purpose: str | None = None
    environment: str | None = None
    cloud_init: CloudInit = field(default_factory=CloudInit)
    start: bool = True
    request_id: int | None = None  # the request this VM fulfils, when one does
    #: the seed disk read-only: a VM whose system disk gets internal snapshots (a unit's: a
    #: writable raw disk makes libvirt refuse them); such a seed is deleted by name
    seed_readonly: bool = False


@dataclass(frozen=True, slots=True)
class ProvisionResult:
    """What one provisioning did. A failed one says why, and what rollback removed or could
    not remove (``leftovers``: objects still on the host that an operator must delete)."""

    id: int | None
    status: ProvisionStatus
    name: str
    host: str
    template: str
    uuid: str | None = None
    disk_path: str | None = None
    seed_path: str | None = None
    seed_written: bool = False
    started: bool = False
    reason: str | None = None
    rolled_back: tuple[str, ...] = ()
    leftovers: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.status is ProvisionStatus.succeeded


def check_name(value: str, what: str) -> str:
    if not NAME_RE.match(value):
        raise ValidationError(
            f"{what} {value[:64]!r} is not valid: 1-63 letters, digits, dots, dashes or "
            "underscores, starting with a letter or digit."
        )
    return value


def check_spec(spec: ProvisionSpec) -> None:
    """Refuse a spec that cannot be provisioned, with one sentence naming the field."""
    check_name(spec.name, "the VM name")
    check_name(spec.template, "the template name")
    for what, value in (
        ("owner", spec.owner),
        ("department", spec.department),
        ("created-by", spec.created_by),
    ):
        if not value or not value.strip():
            raise ValidationError(f"the {what} of a new VM is required.")
        check_text(value, what)
    for what, number, top in (
        ("vcpus", spec.vcpus, MAX_VCPUS),
        ("memory (MiB)", spec.memory_mib, MAX_MEMORY_MIB),
        ("disk size (GiB)", spec.disk_gib, MAX_DISK_GIB),
    ):
        if number is not None and not 1 <= number <= top:
            raise ValidationError(f"{what} must be between 1 and {top}, not {number}.")
    if spec.network is not None:
        check_name(spec.network, "the network name")
    for net in spec.extra_networks:
        check_name(net, "the network name")
    _check_cloud_init(spec.cloud_init)


def _check_cloud_init(ci: CloudInit) -> None:
    if ci.hostname is not None and not HOSTNAME_RE.match(ci.hostname):
        raise ValidationError(f"{ci.hostname[:64]!r} is not a valid hostname.")
    for key in ci.ssh_authorized_keys:
        if not SSH_KEY_RE.match(key.strip()):
            raise ValidationError(
                "an SSH public key must be one line like 'ssh-ed25519 AAAA... comment'."
            )
    if ci.user_data is not None:
        check_text(ci.user_data, "user data", multiline=True)
        if len(ci.user_data.encode()) > MAX_USER_DATA_BYTES:
            raise ValidationError(f"user data is at most {MAX_USER_DATA_BYTES:,} bytes.")
    if ci.network_config is not None and (
        not isinstance(ci.network_config, dict) or ci.network_config.get("version") not in (1, 2)
    ):
        raise ValidationError("network config must be cloud-init's version 1 or 2 (version: 2).")


__all__ = [
    "CloudInit",
    "DiskMode",
    "ProvisionResult",
    "ProvisionSpec",
    "ProvisionStatus",
    "Template",
    "check_name",
    "check_spec",
]
