"""The blueprint catalog: named multi-tier units of VMs, requested and provisioned as one.

A blueprint is stored by name (its tiers as data), so every interface and the request
workflow see the same catalog; adding and removing one is audited. Each tier's template must
be in the template catalog when the blueprint is added, and again when it is requested: a
request resolves the blueprint into :class:`Part` s (concrete sizes, provision order) and
keeps that copy, so changing the blueprint later never changes a request already made.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from corral.domain.blueprint import Blueprint, Hook, Part, Ready, Tier, check_blueprint
from corral.domain.requests import Size
from corral.errors import ConflictError, NotFoundError, ValidationError
from corral.services.templates import TemplateService
from corral.store import models as m
from corral.store.db import Database

_TIER_FIELDS = {"name", "template", "count", "vcpus", "memory_mib", "disk_gb", "order",
                "start_delay_s", "after", "ready", "pre", "post", "networks"}  # fmt: skip
_NUMBERS = {"count": int, "vcpus": int, "memory_mib": int, "order": int,
            "disk_gb": float, "start_delay_s": float}  # fmt: skip


def blueprint_from_mapping(data: object, source: str) -> Blueprint:
    """A blueprint from a mapping (a YAML file, a request body), checked."""
    if not isinstance(data, dict) or not isinstance(data.get("name"), str):
        raise ValidationError(f"{source}: a blueprint is a mapping with a name and tiers.")
    unknown = sorted(set(map(str, data)) - {"name", "description", "tiers"})
    if unknown:
        raise ValidationError(f"{source}: unknown blueprint field {unknown[0]!r}.")
    tiers = data.get("tiers")
    if not isinstance(tiers, list):
        raise ValidationError(f"{source}: 'tiers' is a list of tiers.")
    description = data.get("description")
    if description is not None and not isinstance(description, str):
        raise ValidationError(f"{source}: the description is text.")
    found = tuple(_tier(t, f"{source} tier {i}") for i, t in enumerate(tiers, 1))
    return check_blueprint(Blueprint(data["name"], found, description))


def _tier(data: object, source: str) -> Tier:
    if not isinstance(data, dict):
        raise ValidationError(f"{source}: a tier is a mapping of its fields.")
    unknown = sorted(set(map(str, data)) - _TIER_FIELDS)
    if unknown:
        raise ValidationError(f"{source}: unknown tier field {unknown[0]!r}.")
    for key in ("name", "template"):
        if not isinstance(data.get(key), str):
            raise ValidationError(f"{source}: the tier field {key!r} is required text.")
    values: dict[str, Any] = {"name": data["name"], "template": data["template"]}
    for key, kind in _NUMBERS.items():
        value = data.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValidationError(f"{source}: {key} must be a number.")
        if kind is int and not isinstance(value, int):
            raise ValidationError(f"{source}: {key} must be a whole number.")
        values[key] = kind(value)
    return Tier(**values, **_start(data, source))


def _start(data: dict[str, Any], source: str) -> dict[str, Any]:
    """A tier's dependencies, readiness check and hooks, from their mapping form."""
    out: dict[str, Any] = {}
    after = data.get("after", [])
    if not isinstance(after, list) or not all(isinstance(a, str) for a in after):
        raise ValidationError(f"{source}: 'after' is a list of tier names.")
    out["after"] = tuple(after)
    networks = data.get("networks", [])
    if not isinstance(networks, list) or not all(isinstance(n, str) for n in networks):
        raise ValidationError(f"{source}: 'networks' is a list of network names.")
    out["networks"] = tuple(networks)
    ready = data.get("ready")
    if ready is not None:
        if not isinstance(ready, dict) or set(map(str, ready)) - {"port", "address", "timeout_s"}:
            raise ValidationError(f"{source}: 'ready' is a mapping of port, address, timeout_s.")
        port, address = ready.get("port"), ready.get("address")
        if port is not None and (isinstance(port, bool) or not isinstance(port, int)):
            raise ValidationError(f"{source}: the readiness port is a whole number.")
        if address is not None and not isinstance(address, str):
            raise ValidationError(f"{source}: the readiness address is text.")
        out["ready"] = Ready(port, address, _seconds(ready, 120.0, f"{source} ready"))
    for key in ("pre", "post"):
        hooks = data.get(key, [])
        if not isinstance(hooks, list):
            raise ValidationError(f"{source}: {key!r} is a list of hooks.")
        out[key] = tuple(_hook(h, f"{source} {key} hook") for h in hooks)
    return out


def _hook(data: object, source: str) -> Hook:
    if not isinstance(data, dict) or set(map(str, data)) - {"argv", "timeout_s"}:
        raise ValidationError(f"{source}: a hook is a mapping of argv and timeout_s.")
    argv = data.get("argv")
    if not isinstance(argv, list) or not argv or not all(isinstance(a, str) for a in argv):
        raise ValidationError(
            f"{source}: argv is a list of arguments, the program first (never a shell string)."
        )
    return Hook(tuple(argv), _seconds(data, 60.0, source))


def _seconds(data: dict[str, Any], default: float, source: str) -> float:
    value = data.get("timeout_s", default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValidationError(f"{source}: timeout_s is a number of seconds.")
    return float(value)


def tier_from_stored(data: dict[str, Any]) -> Tier:
    """A tier as stored (its dataclass fields as JSON) back into a Tier."""
    values = dict(data)
    values["after"] = tuple(values.get("after") or ())
    values["networks"] = tuple(values.get("networks") or ())
    ready = values.get("ready")
    values["ready"] = Ready(**ready) if ready else None
    for key in ("pre", "post"):
        values[key] = tuple(Hook(tuple(h["argv"]), h["timeout_s"]) for h in values.get(key) or ())
    return Tier(**values)


def _row_to_blueprint(row: m.BlueprintRow) -> Blueprint:
    return Blueprint(row.name, tuple(tier_from_stored(t) for t in row.tiers), row.description)


class BlueprintService:
    def __init__(self, db: Database, templates: TemplateService | None = None) -> None:
        self.db = db
        self.templates = templates or TemplateService(db)

    def add(self, blueprint: Blueprint, actor: str) -> Blueprint:
        """Store a blueprint whose every tier's template is in the catalog."""
        check_blueprint(blueprint)
        for tier in blueprint.tiers:
            self._template(tier)
        with self.db.session() as s:
            if s.scalar(select(m.BlueprintRow.id).where(m.BlueprintRow.name == blueprint.name)):
                raise ConflictError(f"a blueprint named {blueprint.name!r} already exists.")
            s.add(
                m.BlueprintRow(
                    name=blueprint.name,
                    description=blueprint.description,
                    tiers=[asdict(t) for t in blueprint.tiers],
                    created_at=datetime.now(UTC),
                    created_by=actor,
                )
            )
            try:
                s.flush()
            except IntegrityError:
                raise ConflictError(
                    f"a blueprint named {blueprint.name!r} already exists."
                ) from None
        return blueprint

    def add_mapping(self, data: object, source: str, actor: str) -> Blueprint:
        return self.add(blueprint_from_mapping(data, source), actor)

    def all(self) -> list[Blueprint]:
        with self.db.session() as s:
            rows = s.scalars(select(m.BlueprintRow).order_by(m.BlueprintRow.name))
            return [_row_to_blueprint(r) for r in rows]

    def get(self, name: str) -> Blueprint:
        with self.db.session() as s:
            row = s.scalar(select(m.BlueprintRow).where(m.BlueprintRow.name == name))
            if row is None:
                raise NotFoundError(
                    f"no blueprint named {name[:64]!r}; 'corral blueprint list' shows them."
                )
            return _row_to_blueprint(row)

    def remove(self, name: str) -> None:
        """Remove a blueprint; requests made from it keep their copy of its tiers."""
        with self.db.session() as s:
            row = s.scalar(select(m.BlueprintRow).where(m.BlueprintRow.name == name))
            if row is None:
                raise NotFoundError(f"no blueprint named {name[:64]!r}.")
            s.delete(row)

    def parts(self, name: str) -> tuple[Part, ...]:
        """The blueprint as a request takes it: its tiers in provision order, each with its
        size (the template's where the tier does not say)."""
        parts = []
        for tier in self.get(name).in_order():
            t = self._template(tier)
            size = Size(
                tier.vcpus or t.vcpus,
                tier.memory_mib or t.memory_mib,
                tier.disk_gb if tier.disk_gb is not None else 0.0,
            )
            parts.append(
                Part(tier.name, tier.template, tier.count, size, tier.start_delay_s, tier.networks)
            )
        return tuple(parts)

    def _template(self, tier: Tier) -> Any:
        try:
            return self.templates.get(tier.template)
        except NotFoundError:
            raise ValidationError(
                f"tier {tier.name}: template {tier.template!r} is not in the catalog; add it "
                "first ('corral template add')."
            ) from None


__all__ = ["BlueprintService", "blueprint_from_mapping", "tier_from_stored"]
