"""The audit log for auditors and administrators, and who the caller is (for any caller)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel

from corral.api.deps import require
from corral.api.pagination import Cursor, Limit, Page, decode_cursor, encode_cursor
from corral.api.problems import error_responses
from corral.api.schemas import Line
from corral.domain.access import Permission as Perm
from corral.domain.access import Principal
from corral.errors import ValidationError
from corral.services.audit import AuditLog, AuditRecord

router = APIRouter(prefix="/api/v1", tags=["audit"])


class WhoAmI(BaseModel):
    user: str
    roles: list[str]
    departments: list[str]


@router.get("/audit", response_model=Page[AuditRecord], responses=error_responses(401, 403, 422))
def audit(
    request: Request,
    _who: Annotated[Principal, require(Perm.audit_read)],
    user: Annotated[Line | None, Query(max_length=64, description="Only this actor.")] = None,
    target: Annotated[
        Line | None, Query(max_length=256, description="A target, or a prefix ending in ':'.")
    ] = None,
    since: Annotated[datetime | None, Query(description="From this time, inclusive.")] = None,
    until: Annotated[datetime | None, Query(description="Before this time.")] = None,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> dict[str, Any]:
    """Entries oldest first."""
    for name, moment in (("since", since), ("until", until)):
        if moment is not None and moment.tzinfo is None:
            raise ValidationError(f"{name} has no time zone; add Z or +00:00.")
    after = _after(cursor)
    log = AuditLog(request.app.state.inventory.db)
    rows = log.list(
        user=user, target=target, since=since, until=until, after_seq=after, limit=limit + 1
    )
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = encode_cursor((rows[-1].seq,)) if more and rows else None
    return {"items": rows, "next_cursor": next_cursor, "total": None}


def _after(cursor: str | None) -> int:
    if cursor is None:
        return 0
    key = decode_cursor(cursor)
    if len(key) != 1 or not isinstance(key[0], int):
        raise ValidationError("the pagination cursor is not valid; start again without one.")
    return key[0]


@router.get("/me", response_model=WhoAmI, responses=error_responses(401))
def me(who: Annotated[Principal, require(Perm.self_read)]) -> WhoAmI:
    """The caller's user, roles and departments, as the server sees them now."""
    return WhoAmI(user=who.user, roles=sorted(who.roles), departments=sorted(who.departments))
