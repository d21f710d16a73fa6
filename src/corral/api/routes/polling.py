"""The host poller's status: which hosts were read within the cycle, which are overdue."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request

from corral.api.deps import InventoryDep, require
from corral.api.problems import error_responses
from corral.domain.access import Permission, Principal
from corral.inventory.sync import utcnow
from corral.services.poll_store import PollStatus, PollStore

router = APIRouter(prefix="/api/v1", tags=["inventory"])


@router.get("/polling", response_model=PollStatus, responses=error_responses(401, 403))
def polling_status(
    request: Request,
    inv: InventoryDep,
    _who: Annotated[Principal, require(Permission.fleet_read)],
) -> PollStatus:
    return PollStore(inv.db).status(utcnow(), request.app.state.settings.poll_cycle_s)
