"""Checks of a scenario's parts, each naming the bad entry in one sentence."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from corral.engines.ha_manager.state import Policy
from corral.engines.planning.model import Fleet
from corral.errors import ValidationError

FENCE_OUTCOMES = frozenset({"ok", "fail", "hang"})
_VM_OPTIONS = frozenset({"fail_starts", "start_delay", "migrate_delay"})
_HOST_OPTIONS = frozenset({"fence", "fence_delay"})


def policy(raw: Any, fleet: Fleet, where: str) -> Policy:
    ha = _mapping(raw, where)
    vms = {v.name for v in fleet.vms}
    hosts = {h.name for h in fleet.hosts}
    depends = _mapping(ha.get("depends_on"), f"{where}.depends_on")
    deps = {vm: _names(d, vms, f"{where}.depends_on.{vm}") for vm, d in depends.items()}
    _known(deps, vms, f"{where}.depends_on")
    methods = _mapping(ha.get("fence_methods"), f"{where}.fence_methods")
    _known(methods, hosts, f"{where}.fence_methods")
    fence = {h: _names(m, None, f"{where}.fence_methods.{h}") for h, m in methods.items()}
    cycle = dependency_cycle(deps)
    if cycle:
        raise ValidationError(f"{where}.depends_on has a cycle ({' -> '.join(cycle)}); break it.")
    return Policy(depends_on=deps, fence_methods=fence)


def sim_options(raw: Any, fleet: Fleet, where: str) -> tuple[dict[str, Any], dict[str, Any]]:
    sim = _mapping(raw, where)
    hosts = dict(_mapping(sim.get("hosts"), f"{where}.hosts"))
    vms = dict(_mapping(sim.get("vms"), f"{where}.vms"))
    _known(hosts, {h.name for h in fleet.hosts}, f"{where}.hosts")
    _known(vms, {v.name for v in fleet.vms}, f"{where}.vms")
    for name, opts in hosts.items():
        _options(opts, _HOST_OPTIONS, f"{where}.hosts.{name}")
        bad = set(opts.get("fence", [])) - FENCE_OUTCOMES
        if bad:
            raise ValidationError(f"{where}.hosts.{name}.fence: use ok, fail or hang, not {bad}.")
    for name, opts in vms.items():
        _options(opts, _VM_OPTIONS, f"{where}.vms.{name}")
    return hosts, vms


def plan(raw: Any, fleet: Fleet, where: str) -> dict[str, dict[str, str]]:
    hosts = {h.name for h in fleet.hosts}
    out: dict[str, dict[str, str]] = {}
    for failed, moves in _mapping(raw, where).items():
        _known({failed: 0}, hosts, where)
        entries = _mapping(moves, f"{where}.{failed}")
        _known(entries, {v.name for v in fleet.vms}, f"{where}.{failed}")
        _known({t: 0 for t in entries.values()}, hosts, f"{where}.{failed}")
        out[str(failed)] = {str(k): str(v) for k, v in entries.items()}
    return out


def dependency_cycle(deps: Mapping[str, tuple[str, ...]]) -> list[str]:
    """One cycle of the dependency graph as a path (first == last), or [] if none."""
    done: set[str] = set()

    def visit(vm: str, path: list[str]) -> list[str]:
        if vm in path:
            return [*path[path.index(vm) :], vm]
        if vm in done:
            return []
        for dep in deps.get(vm, ()):
            found = visit(dep, [*path, vm])
            if found:
                return found
        done.add(vm)
        return []

    for vm in sorted(deps):
        found = visit(vm, [])
        if found:
            return found
    return []


def _mapping(raw: Any, where: str) -> Mapping[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ValidationError(f"{where} must be a mapping.")
    return raw


def _names(raw: Any, known: set[str] | None, where: str) -> tuple[str, ...]:
    if not isinstance(raw, list) or not all(isinstance(x, str) for x in raw):
        raise ValidationError(f"{where} must be a list of names.")
    if known is not None:
        _known({x: 0 for x in raw}, known, where)
    return tuple(raw)


def _known(entries: Mapping[str, Any], known: set[str], where: str) -> None:
    unknown = sorted(str(k) for k in entries if k not in known)
    if unknown:
        raise ValidationError(
            f"{where} names {', '.join(unknown)}, not in the fleet; fix the name."
        )


def _options(raw: Any, allowed: frozenset[str], where: str) -> None:
    opts = _mapping(raw, where)
    unknown = sorted(set(opts) - allowed)
    if unknown:
        raise ValidationError(f"{where} has unknown option(s) {unknown}; use {sorted(allowed)}.")
