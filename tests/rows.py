"""Store rows written straight into a test's database, for tests of what reads them."""

from __future__ import annotations

import uuid as uuidlib
from datetime import datetime
from typing import Any

from corral.store import models as m


def vm_row(name: str, now: datetime, **columns: Any) -> m.VM:
    """A live running VM of 1 vCPU, no devices unless given, a fresh UUID unless given."""
    values: dict[str, Any] = {
        "uuid": str(uuidlib.uuid4()),
        "name": name,
        "state": "running",
        "state_since": now,
        "vcpus": 1,
        "memory_max_mib": 512,
        "memory_mib": 512,
        "disks": [],
        "nics": [],
        "snapshots": [],
        "tags": [],
        "created_at": now,
        "first_seen_at": now,
        "updated_at": now,
        "fingerprint": "",
    }
    return m.VM(**{**values, **columns})
