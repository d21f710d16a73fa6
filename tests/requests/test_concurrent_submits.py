"""A burst of submits through one process's request service on PostgreSQL, many more than its
connection pool holds (5 + 10 overflow), while another process holds the decisions lock.

Decisions run one at a time (the lock in the database); the submits of one process queue
for it holding no connection, so none waits for the pool (which gives up after 30 s: 8 of
1,000 HTTP submits failed that way before), every one is decided, and the quota holds.
"""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import create_engine, text, update
from sqlalchemy.pool import NullPool

from corral.domain.requests import RequestState
from corral.engines.approval import Limits
from corral.services.quotas import DECIDERS, FLEET_LOCK, QuotaService
from corral.services.requests import RequestService, RequestView
from corral.store import models as m
from corral.store.db import Database
from tests.requests.conftest import ALICE, BOSS, RED, spec

SUBMITS = 60
QUOTA = 25  # VMs of red: reached before the four hosts are full
HOLD_S = 2.0  # how long another process holds the lock while the submits arrive

WAITING_ON_A_LOCK = text(
    "SELECT count(*) FROM pg_stat_activity "
    "WHERE datname = current_database() AND wait_event_type = 'Lock'"
)


@pytest.mark.parametrize("db", ["postgresql"], indirect=True)
def test_a_burst_of_submits_queues_without_holding_connections_and_keeps_the_quota(
    service: RequestService, quotas: QuotaService, db: Database
) -> None:
    quotas.set(RED, Limits(vms=QUOTA), BOSS)
    drafts = [service.create(spec(), ALICE).id for _ in range(SUBMITS)]
    done: list[RequestView] = []
    errors: list[str] = []
    lock = threading.Lock()

    def submit(request_id: int) -> None:
        try:
            view = service.submit(request_id, ALICE)
        except Exception as exc:  # every failure is the test's finding
            with lock:
                errors.append(f"{type(exc).__name__}: {exc}")
            return
        with lock:
            done.append(view)

    outside = create_engine(db.url, poolclass=NullPool)  # another process's connections
    threads = [threading.Thread(target=submit, args=(i,)) for i in drafts]
    most_waiting = 0
    with outside.connect() as holder, outside.connect() as watcher:
        holder.execute(
            update(m.CapacityLock)
            .where(m.CapacityLock.name == FLEET_LOCK)
            .values(version=m.CapacityLock.version + 1)
        )
        for t in threads:
            t.start()
        until = time.monotonic() + HOLD_S
        while time.monotonic() < until:
            most_waiting = max(most_waiting, int(watcher.execute(WAITING_ON_A_LOCK).scalar_one()))
            watcher.rollback()
            time.sleep(0.05)
        holder.rollback()  # the lock goes: the queue is decided one by one
    for t in threads:
        t.join()
    outside.dispose()

    assert errors == [] and len(done) == SUBMITS
    assert 1 <= most_waiting <= DECIDERS  # a few connections waited on the lock, not the pool
    states = [v.state for v in done]
    assert states.count(RequestState.approved) == QUOTA
    assert states.count(RequestState.denied) == SUBMITS - QUOTA
    assert all(v.reasons[0].rule == "quota.vms" for v in done if v.state is RequestState.denied)
    assert quotas.get(RED, BOSS).used.vms == QUOTA
