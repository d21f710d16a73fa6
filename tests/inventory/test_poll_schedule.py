"""The polling schedule's promises (corral.engines.polling), checked over generated fleets:
every host is due exactly once in every cycle-long window, hosts are spread evenly, a late
read never makes a gap longer than a cycle, and the phase of a host never drifts."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from corral.engines.polling import host_fingerprint, is_overdue, next_due, phases

names = st.sets(st.text("abcdefghij0123456789-", min_size=1, max_size=12), min_size=1, max_size=400)
cycles = st.floats(min_value=1.0, max_value=3600.0)


@given(names, cycles)
def test_phases_lie_in_the_cycle_and_are_distinct_slots(hosts: set[str], cycle: float) -> None:
    got = phases(hosts, cycle)
    assert set(got) == hosts
    width = cycle / len(hosts)
    slots = sorted(got.values())
    for i, p in enumerate(slots):
        assert 0 <= p < cycle
        assert i * width <= p + 1e-9 and p < (i + 1) * width + 1e-9  # one host per slot


@given(names, cycles, st.floats(min_value=0.01, max_value=1.0))
def test_any_window_holds_a_bounded_share_of_hosts(
    hosts: set[str], cycle: float, share: float
) -> None:
    """However the window is placed: at most ceil(w * n / cycle) + 1 hosts start in it."""
    got = sorted(phases(hosts, cycle).values())
    n, w = len(got), share * cycle
    bound = math.ceil(w * n / cycle) + 1
    for start in got:  # the densest windows start at a host
        inside = sum(1 for p in got if start <= p < start + w) + sum(
            1 for p in got if p < start + w - cycle
        )
        assert inside <= bound


@settings(max_examples=200)
@given(names, cycles, st.floats(min_value=0, max_value=1e6), st.integers(1, 6))
def test_read_on_time_every_host_is_due_once_per_cycle(
    hosts: set[str], cycle: float, start: float, cycles_run: int
) -> None:
    """Read each host at its due time, over several cycles: in every cycle-long window
    starting at ``start + k * cycle`` each host is read exactly once."""
    got = phases(hosts, cycle)
    for name, phase in got.items():
        due = next_due(phase, start, cycle)
        reads = []
        while due < start + cycles_run * cycle:
            reads.append(due)
            due = next_due(phase, due, cycle)
        for k in range(cycles_run):
            lo, hi = start + k * cycle, start + (k + 1) * cycle
            assert sum(1 for r in reads if lo < r <= hi) == 1, (name, reads)


@given(cycles, st.floats(min_value=0, max_value=1.0), st.floats(0, 1e6), st.floats(0, 1e5))
def test_a_late_read_keeps_the_phase_and_the_gap(
    cycle: float, frac: float, due_seed: float, late: float
) -> None:
    phase = frac * cycle * 0.999
    due = next_due(phase, due_seed, cycle)
    read = due + late
    nxt = next_due(phase, read, cycle)
    assert read < nxt <= read + cycle + 1e-6  # the next read comes within a cycle
    k = (nxt - phase) / cycle
    assert abs(k - round(k)) < 1e-6  # on the host's own phase: no drift


def test_overdue_counts_from_registration_until_the_first_read() -> None:
    assert not is_overdue(None, registered=0, now=300, cycle_s=300)
    assert is_overdue(None, registered=0, now=301, cycle_s=300)
    assert not is_overdue(100, registered=0, now=400, cycle_s=300)
    assert is_overdue(100, registered=0, now=401, cycle_s=300)


def test_host_fingerprint_changes_with_any_vm_and_not_with_order() -> None:
    a = host_fingerprint("facts", {"u1": "f1", "u2": "f2"}, "s")
    assert a == host_fingerprint("facts", {"u2": "f2", "u1": "f1"}, "s")
    assert a != host_fingerprint("facts", {"u1": "f1", "u2": "f3"}, "s")
    assert a != host_fingerprint("facts", {"u1": "f1"}, "s")
    assert a != host_fingerprint("facts", {"u1": "f1", "u2": "f2"}, "t")
