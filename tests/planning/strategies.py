"""Hypothesis strategies: small random fleets whose current placement is valid."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import strategies as st

from corral.engines.planning import VM, Fleet, Host, Placed, Settings, place
from corral.engines.planning.model import Protection
from corral.engines.planning.placement.scheduler import Scheduler

FEATURES = ("avx2", "avx512", "aes")
GROUPS = ("g1", "g2", "g3")
AFFINITY: tuple[tuple[str, ...], ...] = ((), (), (), (), ("a1",), ("a2",))


@st.composite
def hosts(draw: st.DrawFn, min_size: int = 2, max_size: int = 7) -> tuple[Host, ...]:
    n = draw(st.integers(min_size, max_size))
    out = []
    for i in range(n):
        out.append(
            Host(
                name=f"h{i}",
                cores=draw(st.integers(1, 16)),
                cpu_mhz=draw(st.sampled_from([2000, 2600, 3000])),
                memory_mib=draw(st.sampled_from([4096, 8192, 16384, 32768])),
                features=frozenset(draw(st.sets(st.sampled_from(FEATURES)))),
                failure_domains=(f"rack{i % 2}",),
            )
        )
    return tuple(out)


@st.composite
def vms(draw: st.DrawFn, prefix: str, max_size: int = 20) -> list[VM]:
    n = draw(st.integers(0, max_size))
    return [
        VM(
            name=f"{prefix}{i}",
            vcpus=draw(st.integers(1, 8)),
            memory_mib=draw(st.sampled_from([512, 1024, 2048, 4096, 8192])),
            cpu_reservation_mhz=draw(st.sampled_from([0, 0, 500, 1500])),
            anti_affinity=tuple(draw(st.sets(st.sampled_from(GROUPS), max_size=1))),
            affinity=draw(st.sampled_from(AFFINITY)),
            required_features=frozenset(draw(st.sets(st.sampled_from(FEATURES), max_size=1))),
            protection=draw(st.sampled_from(list(Protection))),
            priority=draw(st.integers(0, 3)),
        )
        for i in range(n)
    ]


@st.composite
def fleets(draw: st.DrawFn, ha: int | None = None) -> Fleet:
    """A fleet whose VMs were placed by the scheduler (so the start state is valid)."""
    ratio = draw(st.sampled_from([1.0, 2.0, 4.0]))
    k = draw(st.integers(0, 1)) if ha is None else ha
    empty = Fleet(draw(hosts()), (), Settings(cpu_allocation_ratio=ratio, ha_host_failures=k))
    candidates = draw(vms("v"))
    result = place(empty, candidates, Scheduler.default("spread", ha_failures=0), atomic=False)
    where = {o.vm: o.host for o in result.outcomes if isinstance(o, Placed)}
    placed = [replace(v, host=where[v.name]) for v in candidates if v.name in where]
    return empty.with_vms(placed)
