"""Calls to hosts that may never return, bounded by a deadline, never holding the process.

libvirt's calls have no timeout: a frozen daemon (SIGSTOP, a hung storage mount) keeps a call
waiting until it wakes, and neither Python nor libvirt can cancel it. So each host call runs in
its own daemon thread and the caller waits at most ``timeout_s``, then moves on with the host
marked late. A late call keeps its thread until the host answers; meanwhile the same key is not
called again (it is reported ``busy``), so threads never pile up in a long-running server.

Daemon threads are not joined at exit (``concurrent.futures`` workers are, which is how a
frozen host used to keep ``corral sync`` from ending). A late call may still hold libvirt
locks, and closing its connection from another thread would wait on them: ``has_late_calls``
tells an interface to leave with ``os._exit`` instead of running finalisers.
"""

from __future__ import annotations

import contextlib
import itertools
import queue
import threading
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Generic, TypeVar

T = TypeVar("T")


class Status(StrEnum):
    DONE = "done"  # the call returned or raised in time
    LATE = "late"  # no answer within the deadline; its thread is left to finish on its own
    BUSY = "busy"  # not called: an earlier call with the same key has not returned yet


@dataclass(frozen=True, slots=True)
class Outcome(Generic[T]):
    key: str
    status: Status
    value: T | None = None
    error: BaseException | None = None


_scopes = itertools.count(1)
_late: dict[str, threading.Event] = {}  # key -> set when that late call finally returns
_late_lock = threading.Lock()


def scope(name: str) -> str:
    """A prefix for the keys of one caller (an inventory, a collector): unique per process."""
    return f"{name}#{next(_scopes)}:"


def has_late_calls() -> bool:
    """True while some call that missed its deadline has still not returned."""
    with _late_lock:
        return any(not done.is_set() for done in _late.values())


def still_running(key: str) -> bool:
    """True while the call under ``key`` that missed its deadline has not returned."""
    return _is_busy(key)


def _is_busy(key: str) -> bool:
    with _late_lock:
        done = _late.get(key)
        if done is not None and done.is_set():
            del _late[key]
            return False
        return done is not None


def _mark_late(key: str, done: threading.Event) -> None:
    with _late_lock:
        _late[key] = done


_Result = tuple[str, object, BaseException | None]


def _start(key: str, fn: Callable[[], object], results: queue.Queue[_Result]) -> threading.Event:
    done = threading.Event()

    def body() -> None:
        try:
            value = fn()
        except BaseException as exc:  # handed to the caller, which decides
            results.put((key, None, exc))
        else:
            results.put((key, value, None))
        finally:
            done.set()

    threading.Thread(target=body, name=f"corral-host:{key}", daemon=True).start()
    return done


def run_all(
    tasks: Mapping[str, Callable[[], T]],
    timeout_s: float,
    *,
    max_parallel: int = 16,
    narrow: Collection[str] = (),
    narrow_parallel: int = 1,
    on_outcome: Callable[[Outcome[T]], None] | None = None,
) -> dict[str, Outcome[T]]:
    """Run every task (at most ``max_parallel`` at once), each given ``timeout_s`` to answer.

    The tasks named in ``narrow`` run at most ``narrow_parallel`` at once among themselves
    (work done in this process, where more at once only contend). A task's time starts when
    the task starts: one waiting for its turn is never late.
    """
    results: queue.Queue[_Result] = queue.Queue()
    waiting = list(tasks)
    running: dict[str, tuple[float, threading.Event]] = {}
    out: dict[str, Outcome[T]] = {}

    def finish(outcome: Outcome[T]) -> None:
        out[outcome.key] = outcome
        if on_outcome is not None:
            on_outcome(outcome)

    def has_room(key: str) -> bool:
        if len(running) >= max_parallel:
            return False
        return key not in narrow or sum(k in narrow for k in running) < narrow_parallel

    # Outcomes are handed on once the room they freed is taken again: a slow ``on_outcome``
    # (the sync writes a host's rows there) then delays no waiting task's start.
    ended: list[Outcome[T]] = []
    while waiting or running or ended:
        for key in list(waiting):
            if not has_room(key):
                continue
            waiting.remove(key)
            if _is_busy(key):
                finish(Outcome(key, Status.BUSY))
                continue
            running[key] = (time.monotonic() + timeout_s, _start(key, tasks[key], results))
        for outcome in ended:
            finish(outcome)
        ended.clear()
        if not running:
            break
        first_deadline = min(deadline for deadline, _ in running.values())
        answers: list[_Result] = []  # the first to come, and every other already there
        with contextlib.suppress(queue.Empty):
            answers.append(results.get(timeout=max(0.0, first_deadline - time.monotonic())))
            while True:
                answers.append(results.get_nowait())
        for key, value, error in answers:
            if running.pop(key, None) is not None:
                ended.append(Outcome(key, Status.DONE, value, error))  # type: ignore[arg-type]
        now = time.monotonic()
        for key, (deadline, done) in list(running.items()):
            if deadline <= now:
                del running[key]
                _mark_late(key, done)
                ended.append(Outcome(key, Status.LATE))
    return out


def call(key: str, fn: Callable[[], T], timeout_s: float) -> Outcome[T]:
    """One task under a deadline."""
    return run_all({key: fn}, timeout_s)[key]
