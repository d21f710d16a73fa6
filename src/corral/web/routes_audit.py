"""The auditor's page: the hash-chained audit log, filtered by who and what, page by page.

Reading it needs ``audit.read`` (auditors and administrators), checked on the server like
every page; it reads through the same ``AuditLog`` service as ``corral audit list`` and
``GET /api/v1/audit``.
"""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import Response

from corral.api.deps import get_inventory
from corral.domain.access import Permission as P
from corral.domain.text import check_text
from corral.errors import ValidationError
from corral.services.audit import AuditLog
from corral.web.pages import PageRoute, authorize, query, render

router = APIRouter(route_class=PageRoute, include_in_schema=False)

PAGE_SIZE = 50


@router.get("/audit")
def audit(request: Request) -> Response:
    authorize(request, P.audit_read, fleet=True)
    q = query(request, {"user": "", "target": "", "after": ""})
    for name in ("user", "target"):
        if len(q[name]) > 256:
            raise ValidationError(f"the {name} filter is at most 256 characters.")
        check_text(q[name], f"the {name} filter")
    if q["after"] and (not q["after"].isdigit() or len(q["after"]) > 18):
        raise ValidationError("'after' is an entry number.")
    after = int(q["after"] or 0)
    rows = AuditLog(get_inventory(request).db).list(
        user=q["user"] or None, target=q["target"] or None, after_seq=after, limit=PAGE_SIZE + 1
    )
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    kept = {k: v for k, v in q.items() if v and k != "after"}
    return render(
        request,
        "audit.html",
        title="Audit log",
        q=q,
        entries=rows,
        next_url="/audit?" + urlencode({**kept, "after": rows[-1].seq}) if more else None,
        first_url="/audit?" + urlencode(kept) if after else None,
    )
