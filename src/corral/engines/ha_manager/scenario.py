"""A simulator scenario as data, and the run that plays it against the manager.

A scenario (YAML in tests/ha_sim/scenarios/) names a fleet, the manager's
settings and policy, how the simulated hosts and VMs behave (fence outcomes,
start failures, delays) and a timeline of things that happen (``events``: a
host crashes, a network splits, the manager dies and comes back). The run
returns the event log, the final state and every violated promise.

Timeline actions: crash, power_on, isolate (network cut, storage heartbeat
alive), cut (network and storage cut, host still running), reconnect,
storage_lost, storage_back, load (another VM appears on a host), fence (set a
host's next fence outcomes), maintenance_enter, maintenance_exit, migrate (a live
migration of ``vm`` from the host ``to`` another, as maintenance does), confirm_off,
manager_stop, manager_start, evacuate (``corral ha maintenance enter``: the host is marked
and its protected VMs live-migrated by an :class:`~.evacuation_run.EvacuationRun`, each
taking the VM's ``migrate_delay``; optional ``max_parallel``) and abort_evacuation
(``corral ha maintenance abort``), autostart (the host starts every VM it holds a
definition of: a stale copy of a VM recovered elsewhere would run twice).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from corral.engines.ha_manager import validate
from corral.engines.ha_manager.evacuate import evacuation
from corral.engines.ha_manager.evacuation_run import ABORTED, EvacuationRun
from corral.engines.ha_manager.events import Event
from corral.engines.ha_manager.manager import Manager
from corral.engines.ha_manager.plan import plans_by_host
from corral.engines.ha_manager.sim import SimEnvironment, SimMigrations
from corral.engines.ha_manager.state import ManagerConfig, Policy
from corral.engines.planning.model import Fleet, fleet_from_mapping
from corral.errors import ValidationError

ACTIONS = frozenset(
    {
        "crash",
        "power_on",
        "isolate",
        "cut",
        "reconnect",
        "storage_lost",
        "storage_back",
        "load",
        "fence",
        "maintenance_enter",
        "maintenance_exit",
        "migrate",
        "confirm_off",
        "manager_stop",
        "manager_start",
        "evacuate",
        "abort_evacuation",
        "autostart",
    }
)


_HOSTLESS = frozenset({"manager_stop", "manager_start"})
_ARGS = {"load": {"name", "vcpus", "memory_mib"}, "fence": {"outcomes"}, "migrate": {"vm", "to"}}


@dataclass(frozen=True)
class Action:
    at: float
    do: str
    host: str | None = None
    args: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    fleet: Fleet
    plan: Mapping[str, Mapping[str, str]]
    config: ManagerConfig
    policy: Policy
    hosts: Mapping[str, Mapping[str, Any]]
    vms: Mapping[str, Mapping[str, Any]]
    timeline: tuple[Action, ...]
    duration: float


@dataclass(frozen=True)
class SimResult:
    scenario: str
    events: tuple[Event, ...]
    violations: tuple[str, ...]
    #: VM -> (manager state, where it runs in the simulated truth or None).
    final: Mapping[str, tuple[str, str | None]]
    #: The plan the run followed (failed host -> VM -> target).
    plan: Mapping[str, Mapping[str, str]]

    def log(self) -> str:
        """The event log, then the final state: the text kept as a scenario's expectation."""
        lines = [e.line().rstrip() for e in self.events]
        lines += [f"final {vm:<10} {st:<16} {on or '-'}" for vm, (st, on) in self.final.items()]
        lines += [f"VIOLATION {v}" for v in self.violations]
        return "\n".join(lines) + "\n"

    def to_dict(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "events": [e.to_dict() for e in self.events],
            "plan": {host: dict(moves) for host, moves in self.plan.items()},
            "final": {vm: {"state": s, "host": h} for vm, (s, h) in self.final.items()},
            "violations": list(self.violations),
        }


def scenario_from_mapping(data: Any, source: str = "scenario") -> Scenario:
    """Validate a parsed scenario document."""
    if not isinstance(data, Mapping):
        raise ValidationError(f"{source} must be a mapping with 'fleet' and 'events'.")
    fleet = fleet_from_mapping(data.get("fleet"), source=f"{source}: fleet")
    try:
        config = ManagerConfig.from_mapping(data.get("config") or {})
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"{source}: config: {exc}.") from None
    policy = validate.policy(data.get("ha"), fleet, f"{source}: ha")
    hosts, vms = validate.sim_options(data.get("sim"), fleet, f"{source}: sim")
    names = {h.name for h in fleet.hosts}
    timeline = tuple(
        _action(a, names, f"{source}: events[{i}]") for i, a in enumerate(data.get("events") or [])
    )
    raw_plan = data.get("plan")
    plan = plans_by_host(fleet) if raw_plan is None else validate.plan(raw_plan, fleet, source)
    return Scenario(
        name=str(data.get("name", source)),
        description=str(data.get("description", "")),
        fleet=fleet,
        plan=plan,
        config=config,
        policy=policy,
        hosts=hosts,
        vms=vms,
        timeline=tuple(sorted(timeline, key=lambda a: a.at)),
        duration=float(data.get("duration", 300)),
    )


def _action(raw: Any, hosts: set[str], where: str) -> Action:
    if not isinstance(raw, Mapping) or "at" not in raw or "do" not in raw:
        raise ValidationError(f"{where} must be a mapping with 'at' and 'do'.")
    if raw["do"] not in ACTIONS:
        raise ValidationError(f"{where}.do {raw['do']!r} is unknown; use one of {sorted(ACTIONS)}.")
    do, host = str(raw["do"]), raw.get("host")
    if (host is None) != (do in _HOSTLESS) or (host is not None and host not in hosts):
        what = "takes no host" if do in _HOSTLESS else "needs the name of a host of the fleet"
        raise ValidationError(f"{where}: {do} {what}.")
    args = {k: v for k, v in raw.items() if k not in ("at", "do", "host")}
    missing = sorted(_ARGS.get(do, set()) - set(args))
    if missing:
        raise ValidationError(f"{where}: {do} needs {', '.join(missing)}.")
    if do == "fence" and not set(args["outcomes"]) <= validate.FENCE_OUTCOMES:
        raise ValidationError(f"{where}: fence outcomes are ok, fail or hang.")
    if not isinstance(raw["at"], int | float) or isinstance(raw["at"], bool):
        raise ValidationError(f"{where}.at must be a number of seconds.")
    return Action(float(raw["at"]), do, host, args)


class StateStore(Protocol):
    """Where a manager's state goes after each round (the live service: the database)."""

    def save(self, state: Mapping[str, Any], t: float, events: Sequence[Event]) -> None: ...

    def load(self) -> Mapping[str, Any] | None: ...


class Run:
    """One scenario being played: the world, the manager (or none while it is down), the log.

    With a ``store`` the state is saved there after every round, as the live service
    does, and a restarted manager resumes from what the store gives back.
    """

    def __init__(self, sc: Scenario, store: StateStore | None = None) -> None:
        self.sc = sc
        self.store = store
        self.env = SimEnvironment(sc.fleet)
        for name, opts in sc.hosts.items():
            h = self.env.hosts[name]
            h.fence_script = list(opts.get("fence", []))
            h.fence_delay = float(opts.get("fence_delay", h.fence_delay))
        for name, opts in sc.vms.items():
            v = self.env.vms[name]
            v.fail_starts = int(opts.get("fail_starts", 0))
            v.start_delay = float(opts.get("start_delay", v.start_delay))
            v.migrate_delay = float(opts.get("migrate_delay", v.migrate_delay))
        #: evacuations in progress, and every evacuated host's mark: in maintenance?, moves
        self.evacuations: dict[str, EvacuationRun] = {}
        self.marks: dict[str, tuple[bool, dict[str, str]]] = {}
        self.manager: Manager | None = self._new_manager(None)
        self.saved: dict[str, Any] = {}
        self.events: list[Event] = []

    def _new_manager(self, saved: Mapping[str, Any] | None) -> Manager:
        sc = self.sc
        if saved is None:
            return Manager(sc.fleet, sc.plan, sc.config, sc.policy)
        return Manager.resume(sc.fleet, sc.plan, saved, sc.config, sc.policy)

    def play(self) -> SimResult:
        step = self.sc.config.check_interval_s
        pending = list(self.sc.timeline)
        t = 0.0
        while t <= self.sc.duration:
            self.env.clock = t
            while pending and pending[0].at <= t:
                self._apply(pending.pop(0))
            self._evacuate()
            if self.manager is not None:
                new = self.manager.tick(self.env)
                self.events += new
                if self.store is not None:
                    self.store.save(self.manager.state.to_dict(), t, new)
            t += step
        return self._result()

    def _apply(self, a: Action) -> None:
        env, host = self.env, a.host or ""
        self.events.append(Event(env.clock, f"sim_{a.do}", a.host, None, _args(a.args)))
        world = {
            "crash": lambda: env.power_off(host),
            "power_on": lambda: env.power_on(host),
            "isolate": lambda: _set(env, host, network=False),
            "cut": lambda: _set(env, host, network=False, storage=False),
            "reconnect": lambda: _set(env, host, network=True, storage=True),
            "storage_lost": lambda: _set(env, host, storage=False),
            "storage_back": lambda: _set(env, host, storage=True),
            "load": lambda: env.add_load(
                str(a.args["name"]), host, int(a.args["vcpus"]), int(a.args["memory_mib"])
            ),
            "fence": lambda: setattr(env.hosts[host], "fence_script", list(a.args["outcomes"])),
            "autostart": lambda: env.autostart(host),
        }
        if a.do in world:
            world[a.do]()
        elif a.do == "manager_stop" and self.manager is not None:
            # The live service saves the state after every round; the simulation keeps
            # what that save held when the manager dies (its last round), through JSON.
            self.saved = json.loads(json.dumps(self.manager.state.to_dict()))
            self.manager = None
        elif a.do == "manager_start" and self.manager is None:
            saved = self.store.load() if self.store is not None else self.saved
            self.manager = self._new_manager(saved or None)
        elif a.do == "evacuate":
            self._begin_evacuation(host, int(a.args.get("max_parallel", 2)))
        elif a.do == "abort_evacuation" and host in self.evacuations:
            self.events += self.evacuations[host].abort(env.clock, "operator")
        elif self.manager is not None:
            if a.do == "maintenance_exit":
                self.marks.pop(host, None)
            self._command(self.manager, a.do, host, a.args)

    # ------------------------------------------------ maintenance evacuations

    def _begin_evacuation(self, host: str, max_parallel: int) -> None:
        """As the maintenance service does: mark the host, then migrate by the plan."""
        others = {h for h, (on, _) in self.marks.items() if on and h != host}
        dests = evacuation(self.env.fleet(), host, self.sc.plan.get(host, {}), others)
        self.marks[host] = (True, self.marks.get(host, (True, {}))[1])
        self.evacuations[host] = EvacuationRun(host, dests, max_parallel=max_parallel)

    def _evacuate(self) -> None:
        """One step of every evacuation, then the marks applied to the manager (as the live
        manager reads them from the database each round)."""
        for host, run in sorted(self.evacuations.items()):
            self.events += run.step(SimMigrations(self.env))
            on, moves = self.marks[host]
            self.marks[host] = (run.state != ABORTED, {**moves, **run.moved()})
            if run.finished:
                del self.evacuations[host]
        if self.manager is None:
            return
        now = self.env.clock
        for host, (on, moves) in sorted(self.marks.items()):
            self.events += self.manager.set_maintenance(host, on, now)
            for vm, target in sorted(moves.items()):
                self.events += self.manager.vm_moved(vm, host, target, now)

    def _command(self, m: Manager, do: str, host: str, args: Mapping[str, Any]) -> None:
        now = self.env.clock
        if do == "migrate":
            vm, to = str(args["vm"]), str(args["to"])
            self.env.migrate(vm, host, to)
            self.events += m.vm_moved(vm, host, to, now)
        elif do == "confirm_off":
            self.env.confirm_off(host)  # the operator made sure: the host is off
            self.events += m.confirm_off(host, now)
        else:
            self.events += m.set_maintenance(host, do == "maintenance_enter", now)

    def _result(self) -> SimResult:
        states = (
            self.saved.get("vms", {})
            if self.manager is None
            else {k: {"state": v.state.value} for k, v in self.manager.state.vms.items()}
        )
        final = {
            name: (str(states[name]["state"]), self.env.vms[name].host) for name in sorted(states)
        }
        return SimResult(
            self.sc.name, tuple(self.events), tuple(self.env.violations), final, self.sc.plan
        )


def _set(env: SimEnvironment, host: str, **flags: bool) -> None:
    for key, value in flags.items():
        setattr(env.hosts[host], key, value)


def _args(args: Mapping[str, Any]) -> str:
    return " ".join(f"{k}={_fmt(v)}" for k, v in sorted(args.items()))


def _fmt(v: Any) -> str:
    if isinstance(v, Sequence) and not isinstance(v, str):
        return ",".join(str(x) for x in v)
    return str(v)


def simulate(sc: Scenario) -> SimResult:
    """Play ``sc`` from start to ``duration``."""
    return Run(sc).play()
