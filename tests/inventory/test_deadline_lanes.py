"""``deadline.run_all``: tasks in the narrow lane wait for their turn without running late.

Test-driver hosts are read at most one per CPU at a time (more only contend for the
interpreter lock). A first version capped them with a semaphore inside the task, so a host
waiting for the semaphore used up its own deadline: on a loaded machine a 20-host first sync
reported a healthy test-driver host as unreachable. A task's deadline now starts when it starts.
"""

from __future__ import annotations

import threading
import time

from corral.hypervisor import deadline


def test_narrow_tasks_run_one_at_a_time_and_none_is_late() -> None:
    running = 0
    most = 0
    lock = threading.Lock()

    def task() -> str:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        time.sleep(0.2)
        with lock:
            running -= 1
        return "read"

    keys = [f"lanes-test:{i}" for i in range(5)]
    # Five tasks of 0.2 s one after another take 1 s: four times the deadline of each.
    out = deadline.run_all({k: task for k in keys}, 0.5, narrow=set(keys), narrow_parallel=1)
    assert {o.status for o in out.values()} == {deadline.Status.DONE}
    assert {o.value for o in out.values()} == {"read"}
    assert most == 1


def test_tasks_outside_the_lane_do_not_wait_for_it() -> None:
    release = threading.Event()
    started: list[str] = []

    def slow() -> str:
        started.append("slow")
        release.wait(5)
        return "slow"

    def quick() -> str:
        started.append("quick")
        release.set()
        return "quick"

    out = deadline.run_all(
        {"lanes-test:slow": slow, "lanes-test:quick": quick},
        5.0,
        narrow={"lanes-test:slow"},
        narrow_parallel=1,
    )
    assert out["lanes-test:quick"].value == "quick" and out["lanes-test:slow"].value == "slow"


def test_a_slow_on_outcome_delays_no_waiting_task() -> None:
    """The sync writes a host's rows while handed its answer: the next host is read meanwhile,
    not after (the room the answer freed is taken again first)."""
    second_started = threading.Event()
    waited: list[bool] = []

    def first() -> str:
        return "first"

    def second() -> str:
        second_started.set()
        return "second"

    def on_outcome(out: deadline.Outcome[str]) -> None:
        if out.key == "lanes-test:first":
            waited.append(second_started.wait(5))

    tasks = {"lanes-test:first": first, "lanes-test:second": second}
    out = deadline.run_all(tasks, 10.0, max_parallel=1, on_outcome=on_outcome)
    assert waited == [True]
    assert {o.value for o in out.values()} == {"first", "second"}
