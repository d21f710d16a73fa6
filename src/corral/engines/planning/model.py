"""The fleet as plain typed data, and the fleet file that describes it.

Every planning engine takes a :class:`Fleet` and returns a plan; nothing here
knows about the database, the API or the CLI. A fleet comes from a YAML/JSON
fleet file (:func:`load_fleet`) or from plain records such as the live
inventory produces (:func:`fleet_from_records`); both go through the same
strict validation, so a bad entry is named (``vms[3].memory_mib must be a
positive integer``) and nothing half-built is returned.

Keys that Corral does not know are ignored, so other tools may extend the file.

Fleet file (YAML or JSON; ``name`` and sizes required, the rest optional)::

    settings: {cpu_allocation_ratio: 4.0, ram_allocation_ratio: 1.0, ha_host_failures: 0}
    profiles: {day: [0.1, 0.2, 0.9, ...]}     # utilization fractions, evenly spaced over a day
    hosts:
      - name: H1
        cores: 3                              # physical cores
        cpu_mhz: 3000                         # per core
        memory_mib: 9216
        threads_per_core: 1
        cpu_model: skylake
        features: [avx2, avx512]
        failure_domains: [rack1, san-a]       # failing together (rack, switch, SAN)
        labels: {ha: failover}                # "ha: failover" marks a dedicated failover host
    vms:
      - name: VM1
        host: H1                              # absent: still to be placed
        vcpus: 1
        memory_mib: 1024
        state: running                        # running | shutoff
        cpu_reservation_mhz: 0
        memory_reservation_mib: 0
        memory_overhead_mib: 26               # absent: estimated where vSphere's slot needs it
        protection: restart                   # replicated | restart | none
        priority: 0                           # higher restarts first
        anti_affinity: [sql]                  # never two members on one host
        affinity: [webapp]                    # members share a host
        required_features: [avx512]
        cpu_model: skylake                    # only hosts of this CPU model
        profile: day                          # key under ``profiles``
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

from corral import safeload
from corral.errors import NotFoundError, ValidationError
from corral.safeload import excerpt

_E = TypeVar("_E", bound=enum.StrEnum)


class PowerState(enum.StrEnum):
    running = "running"
    shutoff = "shutoff"


class Protection(enum.StrEnum):
    """How a VM comes back after its host fails (MISSION S8)."""

    replicated = "replicated"
    restart = "restart"
    none = "none"


@dataclass(frozen=True)
class Host:
    name: str
    cores: int
    cpu_mhz: int
    memory_mib: int
    threads_per_core: int = 1
    cpu_model: str | None = None
    features: frozenset[str] = frozenset()
    failure_domains: tuple[str, ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)

    @property
    def threads(self) -> int:
        return self.cores * self.threads_per_core

    @property
    def cpu_capacity_mhz(self) -> int:
        return self.cores * self.cpu_mhz


@dataclass(frozen=True)
class VM:
    name: str
    vcpus: int
    memory_mib: int
    host: str | None = None
    state: PowerState = PowerState.running
    cpu_reservation_mhz: int = 0
    memory_reservation_mib: int = 0
    memory_overhead_mib: int | None = None
    protection: Protection = Protection.restart
    priority: int = 0
    anti_affinity: tuple[str, ...] = ()
    affinity: tuple[str, ...] = ()
    required_features: frozenset[str] = frozenset()
    cpu_model: str | None = None
    profile: str | None = None

    @property
    def running(self) -> bool:
        return self.state is PowerState.running


@dataclass(frozen=True)
class Settings:
    """Fleet-wide planning knobs (the ``settings:`` block of a fleet file).

    The ratios follow Nova's allocation ratios: a host offers
    ``threads x cpu_allocation_ratio`` vCPUs and ``memory x ram_allocation_ratio``
    MiB. ``ha_host_failures`` is the K of the N+K reserve placement keeps free.
    """

    cpu_allocation_ratio: float = 4.0
    ram_allocation_ratio: float = 1.0
    ha_host_failures: int = 0


@dataclass(frozen=True)
class Fleet:
    hosts: tuple[Host, ...]
    vms: tuple[VM, ...]
    settings: Settings = Settings()
    profiles: Mapping[str, tuple[float, ...]] = field(default_factory=dict)

    def host(self, name: str) -> Host:
        for h in self.hosts:
            if h.name == name:
                return h
        raise NotFoundError(f"Host {name!r} is not in the fleet; check the name.")

    def vm(self, name: str) -> VM:
        for v in self.vms:
            if v.name == name:
                return v
        raise NotFoundError(f"VM {name!r} is not in the fleet; check the name.")

    def with_vms(self, vms: Sequence[VM]) -> Fleet:
        return replace(self, vms=tuple(vms))

    def with_hosts(self, hosts: Sequence[Host]) -> Fleet:
        return replace(self, hosts=tuple(hosts))


# --------------------------------------------------------------------- loading


def load_fleet(path: str | Path) -> Fleet:
    """Read and validate a YAML or JSON fleet file."""
    p = Path(path)
    if not p.is_file():
        raise NotFoundError(f"Fleet file {p} does not exist; give the path of a YAML or JSON file.")
    data = safeload.load_file(p, "fleet file", ValidationError)
    return fleet_from_mapping(data, source=str(p))


def fleet_from_mapping(data: Any, source: str = "fleet") -> Fleet:
    """Validate a parsed fleet document (``hosts``, ``vms``, ``settings``, ``profiles``)."""
    if not isinstance(data, Mapping):
        raise ValidationError(f"{source} must be a mapping with 'hosts' and 'vms'; it is not.")
    hosts = data.get("hosts")
    vms = data.get("vms", [])
    if not isinstance(hosts, list):
        raise ValidationError(f"{source}: 'hosts' must be a list of host entries.")
    if vms is None:
        vms = []
    if not isinstance(vms, list):
        raise ValidationError(f"{source}: 'vms' must be a list of VM entries.")
    settings = _settings(data.get("settings") or {})
    profiles = _profiles(data.get("profiles") or {})
    return fleet_from_records(hosts, vms, settings=settings, profiles=profiles)


def fleet_from_records(
    hosts: list[dict[str, Any]],
    vms: list[dict[str, Any]],
    *,
    settings: Settings | None = None,
    profiles: Mapping[str, Sequence[float]] | None = None,
) -> Fleet:
    """Build a Fleet from plain dicts with the fleet-file keys (the live-inventory boundary)."""
    host_objs = tuple(_host(entry, f"hosts[{i}]") for i, entry in enumerate(hosts))
    _unique([h.name for h in host_objs], "hosts")
    vm_objs = tuple(_vm(entry, f"vms[{i}]") for i, entry in enumerate(vms))
    _unique([v.name for v in vm_objs], "vms")
    prof = {k: tuple(float(x) for x in v) for k, v in (profiles or {}).items()}
    known = {h.name for h in host_objs}
    for i, v in enumerate(vm_objs):
        if v.host is not None and v.host not in known:
            raise ValidationError(f"vms[{i}].host {v.host!r} is not a host in the fleet.")
        if v.profile is not None and v.profile not in prof:
            raise ValidationError(
                f"vms[{i}].profile {v.profile!r} is not defined under 'profiles'."
            )
    return Fleet(hosts=host_objs, vms=vm_objs, settings=settings or Settings(), profiles=prof)


def fleet_to_records(fleet: Fleet) -> dict[str, Any]:
    """The inverse of :func:`fleet_from_mapping`: a document a fleet file can hold."""
    return {
        "settings": {
            "cpu_allocation_ratio": fleet.settings.cpu_allocation_ratio,
            "ram_allocation_ratio": fleet.settings.ram_allocation_ratio,
            "ha_host_failures": fleet.settings.ha_host_failures,
        },
        "profiles": {k: list(v) for k, v in fleet.profiles.items()},
        "hosts": [_host_record(h) for h in fleet.hosts],
        "vms": [_vm_record(v) for v in fleet.vms],
    }


def _host_record(h: Host) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "name": h.name,
        "cores": h.cores,
        "cpu_mhz": h.cpu_mhz,
        "memory_mib": h.memory_mib,
    }
    if h.threads_per_core != 1:
        rec["threads_per_core"] = h.threads_per_core
    if h.cpu_model:
        rec["cpu_model"] = h.cpu_model
    if h.features:
        rec["features"] = sorted(h.features)
    if h.failure_domains:
        rec["failure_domains"] = list(h.failure_domains)
    if h.labels:
        rec["labels"] = dict(h.labels)
    return rec


def _vm_record(v: VM) -> dict[str, Any]:
    rec: dict[str, Any] = {"name": v.name, "vcpus": v.vcpus, "memory_mib": v.memory_mib}
    if v.host is not None:
        rec["host"] = v.host
    rec["state"] = v.state.value
    optional: dict[str, Any] = {
        "cpu_reservation_mhz": v.cpu_reservation_mhz or None,
        "memory_reservation_mib": v.memory_reservation_mib or None,
        "memory_overhead_mib": v.memory_overhead_mib,
        "protection": None if v.protection is Protection.restart else v.protection.value,
        "priority": v.priority or None,
        "anti_affinity": list(v.anti_affinity) or None,
        "affinity": list(v.affinity) or None,
        "required_features": sorted(v.required_features) or None,
        "cpu_model": v.cpu_model,
        "profile": v.profile,
    }
    rec.update({k: val for k, val in optional.items() if val is not None})
    return rec


# ------------------------------------------------------------------ validation


def _unique(names: list[str], what: str) -> None:
    seen: set[str] = set()
    for i, n in enumerate(names):
        if n in seen:
            raise ValidationError(f"{what}[{i}].name {n!r} is a duplicate; names must be unique.")
        seen.add(n)


def _entry(entry: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(entry, Mapping):
        raise ValidationError(f"{where} must be a mapping of keys to values.")
    return entry


def _name(entry: Mapping[str, Any], where: str) -> str:
    name = entry.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ValidationError(f"{where}.name must be a non-empty string.")
    return name


def _int(entry: Mapping[str, Any], key: str, where: str, *, default: int | None = None) -> int:
    """A positive integer (or ``default`` when absent and a default is given)."""
    value = entry.get(key)
    if value is None and default is not None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValidationError(f"{where}.{key} must be a positive integer.")
    return value


def _nonneg(entry: Mapping[str, Any], key: str, where: str) -> int:
    value = entry.get(key, 0)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValidationError(f"{where}.{key} must be a non-negative integer.")
    return value


def _opt_str(entry: Mapping[str, Any], key: str, where: str) -> str | None:
    value = entry.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise ValidationError(f"{where}.{key} must be a non-empty string.")
    return value


def _str_list(entry: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = entry.get(key)
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(x, str) and x for x in value):
        raise ValidationError(f"{where}.{key} must be a list of non-empty strings.")
    return tuple(value)


def _enum(entry: Mapping[str, Any], key: str, where: str, kind: type[_E], dflt: _E) -> _E:
    value = entry.get(key)
    if value is None:
        return dflt
    try:
        return kind(value)
    except ValueError:
        allowed = "|".join(m.value for m in kind)
        shown = excerpt(value)
        raise ValidationError(f"{where}.{key} must be one of {allowed}, not {shown}.") from None


def _host(raw: Any, where: str) -> Host:
    e = _entry(raw, where)
    labels = e.get("labels") or {}
    if not isinstance(labels, Mapping):
        raise ValidationError(f"{where}.labels must be a mapping of strings.")
    return Host(
        name=_name(e, where),
        cores=_int(e, "cores", where),
        cpu_mhz=_int(e, "cpu_mhz", where),
        memory_mib=_int(e, "memory_mib", where),
        threads_per_core=_int(e, "threads_per_core", where, default=1),
        cpu_model=_opt_str(e, "cpu_model", where),
        features=frozenset(_str_list(e, "features", where)),
        failure_domains=_str_list(e, "failure_domains", where),
        labels={str(k): str(v) for k, v in labels.items()},
    )


def _vm(raw: Any, where: str) -> VM:
    e = _entry(raw, where)
    overhead = e.get("memory_overhead_mib")
    priority = e.get("priority", 0)
    if isinstance(priority, bool) or not isinstance(priority, int):
        raise ValidationError(f"{where}.priority must be an integer.")
    return VM(
        name=_name(e, where),
        vcpus=_int(e, "vcpus", where),
        memory_mib=_int(e, "memory_mib", where),
        host=_opt_str(e, "host", where),
        state=_enum(e, "state", where, PowerState, PowerState.running),
        cpu_reservation_mhz=_nonneg(e, "cpu_reservation_mhz", where),
        memory_reservation_mib=_nonneg(e, "memory_reservation_mib", where),
        memory_overhead_mib=None if overhead is None else _nonneg(e, "memory_overhead_mib", where),
        protection=_enum(e, "protection", where, Protection, Protection.restart),
        priority=priority,
        anti_affinity=_str_list(e, "anti_affinity", where),
        affinity=_str_list(e, "affinity", where),
        required_features=frozenset(_str_list(e, "required_features", where)),
        cpu_model=_opt_str(e, "cpu_model", where),
        profile=_opt_str(e, "profile", where),
    )


def _settings(raw: Any) -> Settings:
    e = _entry(raw, "settings")
    cpu = e.get("cpu_allocation_ratio", 4.0)
    ram = e.get("ram_allocation_ratio", 1.0)
    for key, val in (("cpu_allocation_ratio", cpu), ("ram_allocation_ratio", ram)):
        if isinstance(val, bool) or not isinstance(val, int | float) or val <= 0:
            raise ValidationError(f"settings.{key} must be a positive number.")
    k = e.get("ha_host_failures", 0)
    if isinstance(k, bool) or not isinstance(k, int) or k < 0:
        raise ValidationError("settings.ha_host_failures must be a non-negative integer.")
    return Settings(float(cpu), float(ram), k)


def _profiles(raw: Any) -> dict[str, tuple[float, ...]]:
    e = _entry(raw, "profiles")
    out: dict[str, tuple[float, ...]] = {}
    for key, series in e.items():
        ok = (
            isinstance(series, list)
            and series
            and all(
                isinstance(x, int | float) and not isinstance(x, bool) and x >= 0 for x in series
            )
        )
        if not ok:
            raise ValidationError(
                f"profiles.{key} must be a non-empty list of utilization fractions (>= 0)."
            )
        out[str(key)] = tuple(float(x) for x in series)
    return out
