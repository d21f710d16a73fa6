"""The governance policy's drift check over REST: thin call to corral.services.policy.

Needs ``vm.read``: a requester or approver gets the findings of their departments' VMs only.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request

from corral.api.deps import require
from corral.api.problems import error_responses
from corral.domain.access import Permission as Perm
from corral.domain.access import Principal
from corral.services.policy import PolicyReport, PolicyService, load_policy

router = APIRouter(prefix="/api/v1", tags=["policy"])


@router.get("/policy/check", response_model=PolicyReport, responses=error_responses(401, 403, 422))
def check_policy(
    request: Request, who: Annotated[Principal, require(Perm.vm_read)]
) -> PolicyReport:
    """Every VM the caller may see against the governance policy: findings with evidence."""
    inventory = request.app.state.inventory
    policy = load_policy(request.app.state.settings.governance_policy)
    return PolicyService(inventory.db, policy, inventory.clock).check_inventory(who)
