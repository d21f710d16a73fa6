"""Is Corral able to work: can it reach its database and its metrics store?

Each check runs the cheapest real round trip (``SELECT 1``; the newest host
sample of the last minute) so a load balancer or a monitor learns that a
dependency is down before a user does.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import text

from corral.errors import CorralError
from corral.metrics.model import EntityKind
from corral.metrics.store.base import MetricsStore
from corral.store.db import Database


class CheckStatus(StrEnum):
    ok = "ok"
    down = "down"


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    status: CheckStatus
    detail: str


@dataclass(frozen=True, slots=True)
class Health:
    checks: list[Check]

    @property
    def ok(self) -> bool:
        return all(c.status is CheckStatus.ok for c in self.checks)

    def down(self) -> list[Check]:
        return [c for c in self.checks if c.status is CheckStatus.down]


def _check(name: str, probe: Callable[[], str]) -> Check:
    try:
        return Check(name, CheckStatus.ok, probe())
    except CorralError as exc:
        return Check(name, CheckStatus.down, exc.message)
    except Exception as exc:  # any driver error means: not reachable
        return Check(name, CheckStatus.down, f"{type(exc).__name__}: {str(exc)[:200]}")


def check_health(db: Database, metrics: Callable[[], MetricsStore]) -> Health:
    """The database and the metrics store, each reached once; ``metrics`` opens the store."""

    def database() -> str:
        with db.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return f"{db.backend} reachable"

    def store() -> str:
        metrics().latest([EntityKind.host], since=int(time.time()) - 60)
        return "metrics store reachable"

    return Health([_check("database", database), _check("metrics_store", store)])
