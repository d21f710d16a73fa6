"""Where each protected VM of a host entering maintenance goes: a pure function of data.

The host's failover plan already names, for each of its protected VMs, a host verified
to take it if this host were gone; maintenance is that same loss, announced. So a VM
goes to its planned target when that target is still usable (not the host itself, not
in maintenance, with room after the VMs placed before it); otherwise the placement
engine chooses among the usable hosts, with the failover's hard constraints. VMs are
placed in the failover's order (priority first, larger first), each counted on its
target before the next is judged, so no receiver is overloaded.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

from corral.engines.ha_manager.recovery import SCHEDULER
from corral.engines.planning.model import VM, Fleet, Protection
from corral.engines.planning.placement.outcome import Placed
from corral.engines.planning.state import ClusterState


@dataclass(frozen=True)
class Destination:
    vm: str
    #: None: no host can take it (``why`` says so)
    target: str | None
    #: "planned", "re-placed: ...", or why none
    why: str


def evacuation(
    fleet: Fleet,
    host: str,
    plan: Mapping[str, str],
    unavailable: Collection[str] = (),
) -> list[Destination]:
    """A destination for every running protected VM of ``host``; ``plan``: its failover
    plan (VM -> target), ``unavailable``: hosts that may not receive (in maintenance)."""
    state = ClusterState.from_fleet(fleet)
    closed = {host, *unavailable}
    for name, i in state.index.items():
        state.disabled[i] = state.disabled[i] or name in closed
    leaving = [
        v for v in fleet.vms if v.host == host and v.running and v.protection is not Protection.none
    ]
    out = []
    for vm in sorted(leaving, key=_order):
        state.remove(vm.name)
        dest = _choose(state, vm, plan.get(vm.name), closed)
        if dest.target is not None:
            state.add(vm, state.index[dest.target])
        out.append(dest)
    return out


def _order(vm: VM) -> tuple[int, int, int, str]:
    return (-vm.priority, vm.protection is not Protection.replicated, -vm.memory_mib, vm.name)


def _choose(state: ClusterState, vm: VM, planned: str | None, closed: set[str]) -> Destination:
    if planned is not None and planned not in closed and planned in state.index:
        masks = [f.passes(state, vm) for f in SCHEDULER.filters]
        if all(bool(m[state.index[planned]]) for m in masks):
            return Destination(vm.name, planned, "planned")
        why = f"planned {planned} is full"
    elif planned is not None:
        why = f"planned {planned} may not receive"
    else:
        why = "not in the plan"
    outcome = SCHEDULER.decide(state, vm)
    if isinstance(outcome, Placed):
        return Destination(vm.name, outcome.host, f"re-placed: {why}")
    return Destination(vm.name, None, f"no host can take it ({why})")
