"""The manager's state and events in the database: a restarted manager resumes from it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from corral.engines.ha_manager import Event, ManagerState
from corral.engines.ha_manager.scenario import Run
from corral.services import ha_sim
from corral.store import ha_state
from corral.store.db import Database

SCENARIOS = Path(__file__).resolve().parent / "scenarios"


class DbStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.loads = 0

    def save(self, state: Mapping[str, Any], t: float, events: Sequence[Event]) -> None:
        ha_state.save_round(self.db, "sim", state, t, [e.to_dict() for e in events])

    def load(self) -> Mapping[str, Any] | None:
        self.loads += 1
        return ha_state.load_state(self.db, "sim")


def test_manager_resumes_from_the_database(db: Database) -> None:
    """The manager dies while VMs start; its successor reads the database and starts none twice."""
    path = SCENARIOS / "manager_loss_while_starting.yaml"
    store = DbStore(db)
    run = Run(ha_sim.load_scenario(path), store)
    result = run.play()
    assert store.loads == 1
    assert result.log() == ha_sim.expected_log_path(path).read_text()
    saved = ha_state.load_state(db, "sim")
    assert saved is not None
    assert {k: v.state.value for k, v in ManagerState.from_dict(saved).vms.items()}[
        "db"
    ] == "running"
    kinds = [e["kind"] for e in ha_state.events(db, "sim")]
    manager_kinds = [e.kind for e in result.events if not e.kind.startswith("sim_")]
    assert kinds == manager_kinds
    assert kinds.count("vm_start") == 2


def test_nothing_saved_yet(db: Database) -> None:
    assert ha_state.load_state(db, "nobody") is None
    assert ha_state.events(db, "nobody") == []
