"""A blueprint: several tiers of VMs requested, approved, costed and provisioned as one unit.

A tier is a template, how many VMs of it, their size (the template's unless overridden), its
place in the provision order and how long to wait, when the unit starts, after the tier
before it is up (a database up and settled before the application that needs it). A
request for a blueprint books its quota and capacity for every VM at once; its VMs are made
tier after tier, and a tier that fails undoes the tiers made before it (seeds: LabManager's
multi-tier labs, ManageIQ's service bundles with provision order and start delays).
"""

from __future__ import annotations

from dataclasses import dataclass

from corral.domain.provision import check_name
from corral.domain.requests import Size
from corral.domain.text import check_text
from corral.errors import ValidationError

MAX_TIERS = 16
MAX_TIER_COUNT = 50
MAX_DELAY_S = 3600.0
MAX_HOOK_S = 3600.0
MAX_HOOKS = 8
MAX_NETWORKS = 4


@dataclass(frozen=True, slots=True)
class Hook:
    """A command run before a tier starts or after it is ready: its arguments as a list (never
    a shell string, so nothing in a name is ever interpreted) and how long it may take."""

    argv: tuple[str, ...]
    timeout_s: float = 60.0


@dataclass(frozen=True, slots=True)
class Ready:
    """When a started VM of a tier counts as up: libvirt reports it running and, with a
    ``port``, a TCP connection to ``address`` (the VM's name when unset) succeeds."""

    port: int | None = None
    address: str | None = None
    timeout_s: float = 120.0


@dataclass(frozen=True, slots=True)
class Tier:
    """One tier of a blueprint; ``None`` sizes are the template's (disk: its image's)."""

    name: str
    template: str
    count: int = 1
    vcpus: int | None = None
    memory_mib: int | None = None
    disk_gb: float | None = None
    order: int = 0  # provision order: lower first; equal orders keep the blueprint's order
    start_delay_s: float = 0.0  # on every start: wait this long after the previous tier is up
    after: tuple[str, ...] = ()  # tiers that must be up before this one starts
    ready: Ready | None = None
    pre: tuple[Hook, ...] = ()  # run before the tier's VMs start
    post: tuple[Hook, ...] = ()  # run once the tier's VMs are ready
    #: networks the tier's VMs join besides their unit's own isolated one (a web tier on the
    #: LAN); the governance policy's allowed_networks rule checks these, not the unit's
    networks: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Blueprint:
    name: str
    tiers: tuple[Tier, ...]
    description: str | None = None

    def in_order(self) -> tuple[Tier, ...]:
        """The tiers in provision order."""
        ranked = sorted(enumerate(self.tiers), key=lambda it: (it[1].order, it[0]))
        return tuple(t for _, t in ranked)

    def start_order(self) -> tuple[Tier, ...]:
        """The tiers in the order they start: each after the tiers it names in ``after``,
        otherwise in provision order (check_blueprint refuses a cycle)."""
        todo = list(self.in_order())
        done: list[Tier] = []
        names: set[str] = set()
        while todo:
            free = next((t for t in todo if set(t.after) <= names), None)
            if free is None:
                raise ValidationError(
                    "the tiers' 'after' lists form a cycle: "
                    + ", ".join(t.name for t in todo)
                    + "."
                )
            todo.remove(free)
            done.append(free)
            names.add(free.name)
        return tuple(done)


@dataclass(frozen=True, slots=True)
class Part:
    """A tier as requested: concrete size, in provision order (a plain template request is
    one part with no tier name)."""

    tier: str
    template: str
    count: int
    size: Size
    start_delay_s: float = 0.0
    networks: tuple[str, ...] = ()  # a blueprint tier's networks beyond its unit's own


def check_blueprint(b: Blueprint) -> Blueprint:
    """Refuse a blueprint that cannot be requested, naming the tier and the field."""
    check_name(b.name, "the blueprint name")
    if b.description is not None:
        check_text(b.description, "the description", multiline=True)
    if not 1 <= len(b.tiers) <= MAX_TIERS:
        raise ValidationError(f"a blueprint has 1 to {MAX_TIERS} tiers.")
    seen: set[str] = set()
    for t in b.tiers:
        check_name(t.name, "the tier name")
        if t.name in seen:
            raise ValidationError(f"tier {t.name} appears twice; tier names are unique.")
        seen.add(t.name)
        check_name(t.template, f"tier {t.name}'s template")
        if not 1 <= t.count <= MAX_TIER_COUNT:
            raise ValidationError(f"tier {t.name}: count is 1 to {MAX_TIER_COUNT}.")
        if t.vcpus is not None and t.vcpus < 1:
            raise ValidationError(f"tier {t.name}: at least 1 vCPU.")
        if t.memory_mib is not None and t.memory_mib < 64:
            raise ValidationError(f"tier {t.name}: at least 64 MiB of memory.")
        if t.disk_gb is not None and t.disk_gb < 0:
            raise ValidationError(f"tier {t.name}: the disk is 0 GB or more.")
        if not 0 <= t.start_delay_s <= MAX_DELAY_S:
            raise ValidationError(f"tier {t.name}: the start delay is 0 to {MAX_DELAY_S:g} s.")
        _check_start(t)
    for t in b.tiers:
        unknown = sorted(set(t.after) - seen)
        if unknown or t.name in t.after:
            raise ValidationError(
                f"tier {t.name} starts after {(unknown or [t.name])[0]!r}, which is not "
                "another tier of the blueprint."
            )
    b.start_order()
    return b


def _check_start(t: Tier) -> None:
    """The readiness check and hooks of a tier: bounded timeouts, argv lists of text."""
    if t.ready is not None:
        if t.ready.port is not None and not 1 <= t.ready.port <= 65535:
            raise ValidationError(f"tier {t.name}: the readiness port is 1 to 65535.")
        if t.ready.address is not None:
            check_text(t.ready.address, f"tier {t.name}'s readiness address")
        if not 0 < t.ready.timeout_s <= MAX_HOOK_S:
            raise ValidationError(f"tier {t.name}: the readiness timeout is 0 to {MAX_HOOK_S:g} s.")
    if len(t.networks) > MAX_NETWORKS or len(set(t.networks)) < len(t.networks):
        raise ValidationError(f"tier {t.name}: at most {MAX_NETWORKS} networks, each once.")
    for net in t.networks:
        check_name(net, f"tier {t.name}'s network")
    if len(t.pre) > MAX_HOOKS or len(t.post) > MAX_HOOKS:
        raise ValidationError(f"tier {t.name}: at most {MAX_HOOKS} hooks before and after.")
    for hook in (*t.pre, *t.post):
        if not hook.argv or not all(isinstance(a, str) and a for a in hook.argv):
            raise ValidationError(
                f"tier {t.name}: a hook is a non-empty list of arguments (never a shell string)."
            )
        for arg in hook.argv:
            check_text(arg, f"tier {t.name}'s hook argument")
        if not 0 < hook.timeout_s <= MAX_HOOK_S:
            raise ValidationError(f"tier {t.name}: a hook's timeout is 0 to {MAX_HOOK_S:g} s.")


__all__ = ["Blueprint", "Hook", "Part", "Ready", "Tier", "check_blueprint"]
