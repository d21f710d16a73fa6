"""Exact consolidation with OR-Tools CP-SAT, for small fleets.

Minimises ``(VMs + 1) x active hosts + migrations`` (fewest hosts first, then
fewest moves) under capacity per resource, CPU compatibility, vCPUs <= threads,
anti-affinity, affinity and the N+K reserve: the active hosts' capacity minus
the demand must cover the K largest active hosts (written as
``exists t: K t + sum max(0, cap_h y_h - t)``, the usual linear form of a top-K
sum). Returns None when the solver finds nothing within the time limit.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from ortools.sat.python import cp_model

from corral.engines.planning.model import VM, Fleet
from corral.engines.planning.state import MEM, RESOURCES, VCPU, ClusterState, demand_of


@dataclass(frozen=True)
class ExactResult:
    target: dict[str, str]
    hosts_on: tuple[str, ...]
    optimal: bool
    host_bound: int


def _compatible(state: ClusterState, vm: VM, h: int) -> bool:
    host = state.fleet.hosts[h]
    if vm.vcpus > host.threads or not vm.required_features <= host.features:
        return False
    if vm.cpu_model is not None and vm.cpu_model != host.cpu_model:
        return False
    return bool((demand_of(vm) <= state.cap[h] + 1e-9).all())


def solve_exact(fleet: Fleet, failures: int, time_limit_s: float = 10.0) -> ExactResult | None:
    state = ClusterState.from_fleet(fleet)
    vms = [v for v in fleet.vms if v.running]
    n = state.n_hosts
    m = cp_model.CpModel()
    y = [m.new_bool_var(f"on_{h}") for h in range(n)]
    x: dict[tuple[int, int], cp_model.IntVar] = {}
    for i, v in enumerate(vms):
        options = [h for h in range(n) if _compatible(state, v, h)]
        for h in options:
            x[i, h] = m.new_bool_var(f"x_{i}_{h}")
        m.add_exactly_one(x[i, h] for h in options)
    _capacity(m, state, vms, x, y)
    _groups(m, vms, x, n)
    if failures > 0:
        _reserve(m, state, vms, y, failures)
    moves = [
        1 - x[i, state.index[v.host]]
        for i, v in enumerate(vms)
        if v.host and (i, state.index[v.host]) in x
    ]
    m.minimize((len(vms) + 1) * sum(y) + sum(moves))
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = time_limit_s
    solver.parameters.num_workers = 2
    status = solver.solve(m)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return None
    target = {
        v.name: state.host_names[h]
        for (i, h), var in x.items()
        if solver.value(var)
        for v in [vms[i]]
    }
    bound = int(solver.best_objective_bound // (len(vms) + 1))
    on = tuple(state.host_names[h] for h in range(n) if solver.value(y[h]))
    return ExactResult(target, on, status == cp_model.OPTIMAL, bound)


def _capacity(
    m: cp_model.CpModel,
    state: ClusterState,
    vms: list[VM],
    x: dict[tuple[int, int], cp_model.IntVar],
    y: list[cp_model.IntVar],
) -> None:
    demands = [demand_of(v) for v in vms]
    for h in range(state.n_hosts):
        on_h = [(i, var) for (i, hh), var in x.items() if hh == h]
        for r in range(len(RESOURCES)):
            terms = [round(demands[i][r]) * var for i, var in on_h if demands[i][r] > 0]
            if terms:
                m.add(sum(terms) <= int(state.cap[h, r]) * y[h])
        for _, var in on_h:
            m.add_implication(var, y[h])


def _groups(
    m: cp_model.CpModel, vms: list[VM], x: dict[tuple[int, int], cp_model.IntVar], n: int
) -> None:
    anti: dict[str, list[int]] = {}
    aff: dict[str, list[int]] = {}
    for i, v in enumerate(vms):
        for g in v.anti_affinity:
            anti.setdefault(g, []).append(i)
        for g in v.affinity:
            aff.setdefault(g, []).append(i)
    for members in anti.values():
        for h in range(n):
            m.add_at_most_one(x[i, h] for i in members if (i, h) in x)
    for members in aff.values():
        for a, b in itertools.pairwise(members):
            for h in range(n):
                m.add(x.get((a, h), 0) == x.get((b, h), 0))


def _reserve(
    m: cp_model.CpModel, state: ClusterState, vms: list[VM], y: list[cp_model.IntVar], k: int
) -> None:
    for r in (VCPU, MEM):
        caps = [int(c) for c in state.cap[:, r]]
        need = int(sum(demand_of(v)[r] for v in vms) + 0.999)
        t = m.new_int_var(0, max(caps), f"t_{r}")
        over = []
        for h, c in enumerate(caps):
            u = m.new_int_var(0, c, f"u_{r}_{h}")
            m.add(u >= c * y[h] - t)
            over.append(u)
        m.add(sum(c * y[h] for h, c in enumerate(caps)) - need >= k * t + sum(over))
