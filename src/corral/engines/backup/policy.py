"""Backup policy from requirements: what each protection tier (or one VM) asks for.

A tier states its RPO (how much recent work may be lost: a restore point at least this often),
its RTO (how soon the VM must be back: this decides where restore points live), its retention,
its consistency (crash, or application-consistent through the guest agent's fsfreeze), an
optional window the backups must run in, or ``rebuild``: no backup at all, because redeploying
the VM from its template is cheaper (the recipe is recorded instead). Corral ships defaults for
the inventory's tiers; a YAML file (``backup_policy`` setting) may change any of them, add
tiers, and override single VMs. See docs/backup.md.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from corral.errors import ValidationError


class Consistency(enum.StrEnum):
    crash = "crash"  # a point-in-time copy of the disks, like after a power cut
    application = "application"  # guest agent fsfreeze around the backup's start


class RestoreFrom(enum.StrEnum):
    """Where restore points must live for the RTO to hold (chosen from the RTO when not set)."""

    local = "local"  # a copy also kept on the VM's own datastore: restore is a local copy
    repository = "repository"  # the backup repository on the same site
    offsite = "offsite"  # an off-site copy is fast enough


@dataclass(frozen=True, slots=True)
class Retention:
    keep_last: int = 0
    hourly: int = 0
    daily: int = 0
    weekly: int = 0
    monthly: int = 0
    yearly: int = 0


@dataclass(frozen=True, slots=True)
class Window:
    """Minutes after midnight; ``end <= start`` wraps past midnight (22:00-06:00)."""

    start: int
    end: int

    def __str__(self) -> str:
        return f"{_clock(self.start)}-{_clock(self.end)}"

    def contains(self, minute: int) -> bool:
        m = minute % 1440
        if self.start < self.end:
            return self.start <= m < self.end
        return m >= self.start or m < self.end


@dataclass(frozen=True, slots=True)
class TierPolicy:
    """One tier's requirements; ``rebuild`` set means: no backup, rebuild from the recipe."""

    rpo_minutes: int = 1440
    rto_minutes: int = 1440
    consistency: Consistency = Consistency.crash
    retention: Retention = field(default_factory=Retention)
    window: Window | None = None
    restore_from: RestoreFrom | None = None
    rebuild: str | None = None

    @property
    def backed_up(self) -> bool:
        return self.rebuild is None

    @property
    def where(self) -> RestoreFrom:
        """Where restore points live: as set, else the fastest place the RTO needs."""
        if self.restore_from is not None:
            return self.restore_from
        if self.rto_minutes <= 60:
            return RestoreFrom.local
        if self.rto_minutes <= 1440:
            return RestoreFrom.repository
        return RestoreFrom.offsite


@dataclass(frozen=True, slots=True)
class Planner:
    """The planner's knobs: the copy rate of one job, and defaults where measurements lack."""

    job_mib_s: int = 100  # one backup job's throttled copy rate (blockJobSetSpeed)
    change_per_day: float = 0.05  # share of a disk rewritten per day, without write history
    host_mib_s: int = 200  # backup I/O budget of a host without its own
    datastore_mib_s: int = 400  # backup I/O budget of a datastore without its own


@dataclass(frozen=True, slots=True)
class RestoreTesting:
    """Restore tests: each backed-up VM's newest point restored as a throwaway VM and booted on
    an isolated network every ``every_minutes``. It counts as booted once it has run
    ``settle_s`` seconds and, when ``boot_marker`` is set, its file console shows that text."""

    every_minutes: int = 7 * 1440
    boot_timeout_s: int = 300
    settle_s: int = 5
    boot_marker: str | None = None


DEFAULT_TIERS: Mapping[str, TierPolicy] = {
    "replicated": TierPolicy(
        rpo_minutes=60,
        rto_minutes=60,
        consistency=Consistency.application,
        retention=Retention(keep_last=4, hourly=24, daily=7, weekly=4, monthly=12),
    ),
    "restart": TierPolicy(
        rpo_minutes=240,
        rto_minutes=240,
        consistency=Consistency.application,
        retention=Retention(keep_last=2, daily=14, weekly=8, monthly=6),
    ),
    "backup-only": TierPolicy(
        rpo_minutes=1440,
        rto_minutes=1440,
        retention=Retention(keep_last=1, daily=7, weekly=4, monthly=3),
        window=Window(22 * 60, 6 * 60),
    ),
    "none": TierPolicy(rebuild="redeploy from its template; no data worth keeping"),
}


@dataclass(frozen=True, slots=True)
class Policy:
    """The tiers, the tier of a VM that has none, per-VM overrides and the planner's knobs."""

    tiers: Mapping[str, TierPolicy] = field(default_factory=lambda: dict(DEFAULT_TIERS))
    default_tier: str = "restart"
    vms: Mapping[str, VMOverride] = field(default_factory=dict)
    planner: Planner = field(default_factory=Planner)
    source: str = "built-in defaults"
    restore_test: RestoreTesting = field(default_factory=RestoreTesting)

    def for_vm(self, name: str, tier: str | None) -> Effective:
        """The policy one VM gets: its override, else its tier, else the default tier."""
        override = self.vms.get(name)
        chosen = (override.tier if override and override.tier else None) or tier
        origin = "tier"
        if chosen is None:
            chosen, origin = self.default_tier, "default tier"
        if chosen not in self.tiers:
            raise ValidationError(
                f"VM {name!r} has protection tier {chosen!r}, which the backup policy "
                f"({self.source}) does not define; add it under 'tiers' or retier the VM."
            )
        rules = self.tiers[chosen]
        if override is not None and override.changes:
            rules, origin = replace(rules, **override.changes), "vm override"
        return Effective(name, chosen, origin, rules)


@dataclass(frozen=True, slots=True)
class VMOverride:
    tier: str | None = None
    changes: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Effective:
    """The policy a VM ends up with and where it came from (vm override, tier, default tier)."""

    vm: str
    tier: str
    origin: str
    rules: TierPolicy


# -- reading the YAML -------------------------------------------------------------------
_TOP = frozenset({"default_tier", "tiers", "vms", "planner", "restore_test"})
_TIER = frozenset(
    {"rpo", "rto", "consistency", "retention", "window", "restore_from", "rebuild", "extends"}
)
_PLANNER = {"job_mib_s": int, "change_per_day": float, "host_mib_s": int, "datastore_mib_s": int}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(m|min|h|d|w)?\s*$")
_UNIT = {"m": 1, "min": 1, "h": 60, "d": 1440, "w": 10080, None: 60}


def parse_policy(data: Any, source: str) -> Policy:
    """The policy of a parsed YAML document; every error names its place in ``source``."""
    if data is None:
        data = {}
    _mapping(data, source)
    _keys(data, _TOP, source)
    tiers = dict(DEFAULT_TIERS)
    for name, raw in _mapping(data.get("tiers") or {}, f"{source}: tiers").items():
        where = f"{source}: tiers.{name}"
        parent = str(raw.get("extends", name)) if isinstance(raw, Mapping) else str(name)
        if parent != name and parent not in tiers:
            raise ValidationError(f"{where} extends {parent!r}, which is not a tier (yet).")
        tiers[str(name)] = _tier(raw, tiers.get(parent) or TierPolicy(), where)
    default_tier = str(data.get("default_tier", "restart"))
    if default_tier not in tiers:
        raise ValidationError(f"{source}: default_tier {default_tier!r} is not a tier.")
    vms = {
        str(name): _override(raw, tiers, f"{source}: vms.{name}")
        for name, raw in _mapping(data.get("vms") or {}, f"{source}: vms").items()
    }
    planner = _planner(data.get("planner"), source)
    testing = _restore_testing(data.get("restore_test"), source)
    return Policy(tiers, default_tier, vms, planner, source, testing)


def _tier(raw: Any, base: TierPolicy, where: str) -> TierPolicy:
    _keys(_mapping(raw, where), _TIER, where)
    return replace(base, **_changes(raw, where))


def _override(raw: Any, tiers: Mapping[str, TierPolicy], where: str) -> VMOverride:
    _keys(_mapping(raw, where), _TIER | {"tier"}, where)
    tier = raw.get("tier")
    if tier is not None and str(tier) not in tiers:
        raise ValidationError(f"{where}.tier {tier!r} is not a tier ({', '.join(tiers)}).")
    changes = _changes({k: v for k, v in raw.items() if k != "tier"}, where)
    return VMOverride(None if tier is None else str(tier), changes)


def _changes(raw: Mapping[str, Any], where: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if "rpo" in raw:
        out["rpo_minutes"] = _minutes(raw["rpo"], f"{where}.rpo")
    if "rto" in raw:
        out["rto_minutes"] = _minutes(raw["rto"], f"{where}.rto")
    if "consistency" in raw:
        out["consistency"] = _enum(Consistency, raw["consistency"], f"{where}.consistency")
    if "restore_from" in raw:
        out["restore_from"] = _enum(RestoreFrom, raw["restore_from"], f"{where}.restore_from")
    if "retention" in raw:
        out["retention"] = _retention(raw["retention"], f"{where}.retention")
    if "window" in raw:
        out["window"] = None if raw["window"] is None else parse_window(raw["window"], where)
    if "rebuild" in raw:
        recipe = raw["rebuild"]
        if recipe is not None and (not isinstance(recipe, str) or not recipe.strip()):
            raise ValidationError(f"{where}.rebuild must be the rebuild recipe (text) or null.")
        out["rebuild"] = recipe
    return out


def _minutes(raw: Any, where: str) -> int:
    """``90m``, ``4h``, ``1d``, ``1w`` or a number of hours, as whole minutes (at least 5)."""
    match = _DURATION.match(str(raw)) if not isinstance(raw, bool) else None
    if match is None:
        raise ValidationError(f"{where} must be a duration such as 30m, 4h or 1d, not {raw!r}.")
    minutes = round(float(match.group(1)) * _UNIT[match.group(2)])
    if minutes < 5:
        raise ValidationError(f"{where} must be at least 5 minutes.")
    return minutes


def parse_window(raw: Any, where: str) -> Window:
    """``"22:00-06:00"``: the hours backups may run in."""
    match = re.match(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$", str(raw))
    if match is None:
        raise ValidationError(f"{where}.window must look like 22:00-06:00, not {raw!r}.")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    if h1 > 23 or h2 > 24 or m1 > 59 or m2 > 59 or (h1, m1) == (h2 % 24, m2):
        raise ValidationError(f"{where}.window {raw!r} is not a span of the day.")
    return Window(h1 * 60 + m1, (h2 * 60 + m2) % 1440)


def _retention(raw: Any, where: str) -> Retention:
    known = frozenset(Retention.__dataclass_fields__)
    _keys(_mapping(raw, where), known, where)
    values = {}
    for key, value in raw.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValidationError(f"{where}.{key} must be a whole number, 0 or more.")
        values[key] = value
    return Retention(**values)


def _planner(raw: Any, source: str) -> Planner:
    where = f"{source}: planner"
    values: dict[str, Any] = {}
    for key, value in _mapping(raw or {}, where).items():
        if key not in _PLANNER:
            raise ValidationError(f"{where}: unknown key {key!r} ({', '.join(_PLANNER)}).")
        kind = _PLANNER[key]
        ok = isinstance(value, int | float) and not isinstance(value, bool) and value > 0
        if not ok or (kind is int and not isinstance(value, int)):
            what = "a positive whole number" if kind is int else "a positive number"
            raise ValidationError(f"{where}.{key} must be {what}.")
        values[key] = kind(value)
    return Planner(**values)


def _restore_testing(raw: Any, source: str) -> RestoreTesting:
    where = f"{source}: restore_test"
    known = {"every", "boot_timeout_s", "settle_s", "boot_marker"}
    values: dict[str, Any] = {}
    for key, value in _mapping(raw or {}, where).items():
        if key not in known:
            raise ValidationError(f"{where}: unknown key {key!r} ({', '.join(sorted(known))}).")
        if key == "every":
            values["every_minutes"] = _minutes(value, f"{where}.every")
        elif key == "boot_marker":
            if not isinstance(value, str) or not value.strip():
                raise ValidationError(f"{where}.boot_marker must be a non-empty text.")
            values[key] = value
        elif isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValidationError(f"{where}.{key} must be a whole number of seconds.")
        else:
            values[key] = value
    return RestoreTesting(**values)


def _enum(kind: type[enum.StrEnum], raw: Any, where: str) -> Any:
    try:
        return kind(str(raw))
    except ValueError:
        allowed = ", ".join(m.value for m in kind)
        raise ValidationError(f"{where} must be one of {allowed}, not {raw!r}.") from None


def _mapping(raw: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(raw, Mapping):
        raise ValidationError(f"{where} must be a mapping of keys to values.")
    return raw


def _keys(raw: Mapping[str, Any], known: frozenset[str], where: str) -> None:
    unknown = sorted(str(k) for k in raw if k not in known)
    if unknown:
        raise ValidationError(
            f"{where}: unknown key {unknown[0]!r}; known keys: {', '.join(sorted(known))}."
        )


def _clock(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"
