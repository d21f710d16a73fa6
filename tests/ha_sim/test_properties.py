"""The manager's promises over random scenarios (hypothesis), checked by the simulated truth.

Safety, whatever happens (crashes, cuts, isolation, storage loss, fences that fail or
hang, VMs that fail to start, load arriving, the manager dying and resuming): no VM
ever runs on two hosts, none starts before its old host is proven off, no receiver
goes over capacity. Liveness, for one crashed host: every VM the stored plan brings
back is running at the end when the host was fenced.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from corral.engines.ha_manager.scenario import Run, scenario_from_mapping

FAULTS = ("crash", "cut", "isolate", "reconnect", "power_on", "storage_lost", "storage_back")
#: Enough to find the faults seen while building this; ~10 s per test on this machine.
EXAMPLES = 200
OUTCOMES = st.lists(st.sampled_from(["ok", "fail", "hang"]), max_size=4)


@st.composite
def fleets(draw: st.DrawFn) -> dict[str, Any]:
    n = draw(st.integers(3, 5))
    mems = [draw(st.sampled_from([4096, 8192, 12288])) for _ in range(n)]
    hosts = [
        {"name": f"H{i + 1}", "cores": draw(st.integers(2, 6)), "cpu_mhz": 2000, "memory_mib": m}
        for i, m in enumerate(mems)
    ]
    free = dict(zip([h["name"] for h in hosts], mems, strict=True))
    vms = []
    for i in range(draw(st.integers(1, 10))):
        host = draw(st.sampled_from(sorted(free)))
        mem = draw(st.sampled_from([512, 1024, 2048, 3072]))
        if mem > free[host]:
            continue
        free[host] -= mem
        vm = {"name": f"v{i}", "host": host, "vcpus": draw(st.integers(1, 2)), "memory_mib": mem}
        vm["priority"] = draw(st.integers(0, 3))
        vm["protection"] = draw(st.sampled_from(["restart", "restart", "replicated", "none"]))
        vms.append(vm)
    return {"hosts": hosts, "vms": vms}


def _depends(draw: st.DrawFn, vms: list[dict[str, Any]]) -> dict[str, list[str]]:
    names = [v["name"] for v in vms]
    deps: dict[str, list[str]] = {}
    for j, name in enumerate(names):
        earlier = names[:j]
        if earlier and draw(st.booleans()):
            deps[name] = [draw(st.sampled_from(earlier))]  # earlier only: no cycles
    return deps


@st.composite
def chaos(draw: st.DrawFn) -> dict[str, Any]:
    fleet = draw(fleets())
    hosts = [h["name"] for h in fleet["hosts"]]
    events: list[dict[str, Any]] = [
        {"at": draw(st.integers(0, 200)), "do": draw(st.sampled_from(FAULTS)), "host": h}
        for h in draw(st.lists(st.sampled_from(hosts), min_size=1, max_size=5))
    ]
    if draw(st.booleans()):
        stop = draw(st.integers(0, 150))
        events += [{"at": stop, "do": "manager_stop"}, {"at": stop + 40, "do": "manager_start"}]
    for k in range(draw(st.integers(0, 3))):  # load arriving after the plan was made
        events.append(
            {
                "at": draw(st.integers(0, 100)),
                "do": "load",
                "host": draw(st.sampled_from(hosts)),
                "name": f"extra{k}",
                "vcpus": 1,
                "memory_mib": draw(st.sampled_from([2048, 4096, 8192])),
            }
        )
    return {
        "duration": 400,
        "config": {"grace_s": draw(st.sampled_from([10, 30])), "max_starts_per_host": 2},
        "fleet": fleet,
        "ha": {"depends_on": _depends(draw, fleet["vms"])},
        "sim": {
            "hosts": {h: {"fence": draw(OUTCOMES)} for h in hosts},
            "vms": {
                v["name"]: {
                    "fail_starts": draw(st.integers(0, 2)),
                    "start_delay": draw(st.sampled_from([1, 5, 20])),
                }
                for v in fleet["vms"]
            },
        },
        "events": events,
    }


def _play(doc: dict[str, Any]) -> Run:
    run = Run(scenario_from_mapping(doc))
    run.play()
    return run


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(chaos())
def test_safety_under_chaos(doc: dict[str, Any]) -> None:
    run = _play(doc)
    assert run.env.violations == [], run.env.violations
    for vm in run.env.vms.values():  # one VM, one host: the truth never has two copies
        assert vm.host is None or vm.host in run.env.hosts


@st.composite
def one_crash(draw: st.DrawFn) -> dict[str, Any]:
    fleet = draw(fleets())
    victim = draw(st.sampled_from([h["name"] for h in fleet["hosts"]]))
    return {
        "duration": 600,
        "config": {"max_starts_per_host": draw(st.integers(1, 3))},
        "fleet": fleet,
        "ha": {"depends_on": _depends(draw, fleet["vms"])},
        "sim": {
            "hosts": {victim: {"fence": draw(OUTCOMES)}},
            "vms": {
                v["name"]: {"start_delay": draw(st.sampled_from([1, 5, 20]))} for v in fleet["vms"]
            },
        },
        "events": [{"at": 20, "do": draw(st.sampled_from(["crash", "cut"])), "host": victim}],
    }


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(one_crash())
def test_plan_comes_back_when_fenced(doc: dict[str, Any]) -> None:
    run = _play(doc)
    victim = doc["events"][0]["host"]
    assert run.env.violations == []
    fenced = any(e.kind == "host_fenced" and e.host == victim for e in run.events)
    promised = run.sc.plan[victim]
    if fenced:
        for vm in promised:
            assert run.env.vms[vm].host is not None, f"{vm} planned to {promised[vm]} is down"
    else:  # not proven off: nothing of it may have moved
        assert not any(e.kind == "vm_start" for e in run.events)
    unprotected = {
        v["name"] for v in doc["fleet"]["vms"] if v["protection"] == "none" and v["host"] == victim
    }
    down = {e.vm for e in run.events if e.kind == "vm_down_unprotected"}
    assert down == unprotected  # reported as soon as the host is declared failed
