"""Independent checks of what the planners promise (not using the code under test's verdicts)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence

from corral.engines.planning import VM, Fleet


def host_load(fleet: Fleet, placement: Mapping[str, str]) -> dict[str, tuple[float, float, float]]:
    """vCPUs, memory and CPU reservation per host for running VMs at ``placement``."""
    vms = {v.name: v for v in fleet.vms}
    load: dict[str, list[float]] = {h.name: [0.0, 0.0, 0.0] for h in fleet.hosts}
    for name, host in placement.items():
        v = vms[name]
        if v.running:
            load[host][0] += v.vcpus
            load[host][1] += v.memory_mib
            load[host][2] += v.cpu_reservation_mhz
    return {h: (a, b, c) for h, (a, b, c) in load.items()}


def violations(
    fleet: Fleet,
    placement: Mapping[str, str],
    extra: Sequence[VM] = (),
    *,
    affinity: bool = True,
) -> list[str]:
    """Every overcommit, anti-affinity breach and CPU-requirement breach at ``placement``."""
    f = fleet.with_vms([*fleet.vms, *extra])
    hosts = {h.name: h for h in f.hosts}
    vms = {v.name: v for v in f.vms}
    s = f.settings
    bad = []
    for host, (cpu, mem, res) in host_load(f, placement).items():
        h = hosts[host]
        if cpu > h.threads * s.cpu_allocation_ratio + 1e-9:
            bad.append(f"{host} vcpus {cpu}")
        if mem > h.memory_mib * s.ram_allocation_ratio + 1e-9:
            bad.append(f"{host} memory {mem}")
        if res > h.cpu_capacity_mhz + 1e-9:
            bad.append(f"{host} reservations {res}")
    groups: Counter[tuple[str, str]] = Counter()
    for name, host in placement.items():
        v = vms[name]
        if not v.running:
            continue
        for g in v.anti_affinity:
            groups[(g, host)] += 1
        h = hosts[host]
        if not v.required_features <= h.features or v.vcpus > h.threads:
            bad.append(f"{name} incompatible with {host}")
    bad += [f"group {g} twice on {h}" for (g, h), n in groups.items() if n > 1]
    if affinity:
        homes: dict[str, set[str]] = {}
        for name, host in placement.items():
            for g in vms[name].affinity if vms[name].running else ():
                homes.setdefault(g, set()).add(host)
        bad += [
            f"affinity group {g} split over {sorted(h)}" for g, h in homes.items() if len(h) > 1
        ]
    return bad


def current_placement(fleet: Fleet) -> dict[str, str]:
    return {v.name: v.host for v in fleet.vms if v.host is not None and v.running}
