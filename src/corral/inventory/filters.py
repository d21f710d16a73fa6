"""VM search: a typed filter, a whitelist of sort keys, and opaque cursors."""

from __future__ import annotations

import base64
import json
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Select, String, and_, func, or_, select

from corral.errors import ValidationError
from corral.inventory.listing import SORT_COLUMNS, VMFilter, escape_like
from corral.store import models as m

#: The sort keys of the listing (corral.inventory.listing), as ORM columns.
SORT_KEYS = {name: getattr(m.VM, name) for name in SORT_COLUMNS}

__all__ = ["SORT_KEYS", "VMFilter", "apply_filter", "decode_cursor", "encode_cursor"]


def apply_filter(q: Select[Any], f: VMFilter, now: datetime) -> Select[Any]:
    """``q`` narrowed to the VMs ``f`` selects (works for row and count queries alike)."""
    conds: list[Any] = []
    if f.only_deleted:
        conds.append(m.VM.deleted_at.is_not(None))
    elif not f.include_deleted:
        conds.append(m.VM.deleted_at.is_(None))
    if f.host:
        conds.append(m.VM.host_id.in_(select(m.Host.id).where(m.Host.name == f.host)))
    for col, value in (
        (m.VM.state, f.state),
        (m.VM.owner, f.owner),
        (m.VM.department, f.department),
        (m.VM.project, f.project),
        (m.VM.environment, f.environment),
    ):
        if value:
            conds.append(col == value)
    if f.departments is not None:
        conds.append(m.VM.department.in_(sorted(f.departments)))
    if f.search:
        needle = f.search.lower()  # anywhere in a name or purpose; the start of a UUID
        conds.append(
            or_(
                func.lower(m.VM.name).like(f"%{needle}%"),
                m.VM.uuid.like(f"{needle}%"),
                func.lower(func.coalesce(m.VM.purpose, "")).like(f"%{needle}%"),
            )
        )
    if f.no_owner:
        conds.append(or_(m.VM.owner.is_(None), m.VM.owner == ""))
    if f.no_purpose:
        conds.append(or_(m.VM.purpose.is_(None), m.VM.purpose == ""))
    if f.template is not None:
        conds.append(m.VM.is_template.is_(f.template))
    if f.older_than_days is not None:
        conds.append(m.VM.created_at <= now - timedelta(days=f.older_than_days))
    if f.off_for_days is not None:
        conds.append(
            and_(m.VM.state == "shutoff", m.VM.state_since <= now - timedelta(days=f.off_for_days))
        )
    if f.expired:
        conds.append(and_(m.VM.expires_on.is_not(None), m.VM.expires_on < now.date()))
    if f.tag:
        # Tags are a JSON list; match the quoted element in its text form (portable).
        conds.append(func.cast(m.VM.tags, String).like(f'%"{escape_like(f.tag)}"%', escape="\\"))
    return q.where(*conds) if conds else q


def encode_cursor(sort_value: Any, uuid: str) -> str:
    if isinstance(sort_value, datetime | date):
        sort_value = {"t": sort_value.isoformat()}
    raw = json.dumps([sort_value, uuid], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[Any, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        value, uuid = json.loads(raw)
        if isinstance(value, dict) and "t" in value:
            value = datetime.fromisoformat(value["t"])
        if not isinstance(uuid, str):
            raise ValueError
        return value, uuid
    except (ValueError, TypeError, json.JSONDecodeError):
        raise ValidationError(
            "the pagination cursor is not valid; start again without one."
        ) from None
