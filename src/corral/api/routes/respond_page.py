"""The VM owner's answer page: the link in the reclamation e-mail opens it.

Why a page: no VM owner will POST JSON. The link ``/reclaim/respond/<token>``
carries the one-case token the notice e-mailed, and the token is the only
authorization, so it is treated as a secret: every response forbids caching,
referrers and framing, and ``corral.api.log_redaction`` replaces the token in
any logged path. The route is thin: it checks the token, reads the form and
answers with the page ``corral.reports.answer_page`` builds.
"""

from __future__ import annotations

import logging
import re
from typing import Annotated
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from lxml import html

from corral.api.deps import ReclaimDep, audited_as_owner
from corral.api.log_redaction import RedactTokenPaths, redact, redact_token_paths
from corral.domain.text import bad_character
from corral.errors import CorralError, NotFoundError
from corral.reports.answer_page import Answer, answer_page, not_found_page, submit_answer
from corral.reports.templates.elements import Element

log = logging.getLogger(__name__)

router = APIRouter(prefix="/reclaim/respond", include_in_schema=False)

SECURITY_HEADERS = {
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
}
#: secrets.token_urlsafe(32) gives 43 characters; anything else is not a link Corral made.
TOKEN = re.compile(r"[A-Za-z0-9_-]{16,128}")
MAX_FORM_BYTES = 16_384


async def read_answer(request: Request) -> Answer:
    """The posted form, parsed here (no python-multipart): small, url-encoded, UTF-8."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        return Answer(problem="the answer must be sent with the form on this page.")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            return Answer(problem="the answer is too long; keep the reason short.")
    try:
        fields = parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=10)
    except (UnicodeDecodeError, ValueError):
        return Answer(problem="the answer could not be read; send it with the form on this page.")

    def one(name: str) -> str:
        return fields.get(name, [""])[-1]

    if any(bad_character(v, multiline=True) for values in fields.values() for v in values):
        # Never echoed back: the page could not show it, and it is never stored.
        return Answer(problem="the answer contains a control or invalid character; type it again.")
    return Answer(one("action"), one("until").strip(), one("reason"), one("sure") == "yes")


AnswerForm = Annotated[Answer, Depends(read_answer)]


@router.get("/{token}", response_class=HTMLResponse)
def show(token: str, svc: ReclaimDep) -> Response:
    case_id = svc.case_for_token(token) if TOKEN.fullmatch(token) else None
    if case_id is None:
        return not_found()
    return html_response(answer_page(svc, case_id, Answer()))


@router.post(
    "/{token}",
    response_class=HTMLResponse,
    dependencies=[audited_as_owner("POST the owner's answer page")],
)
def answer(token: str, form: AnswerForm, request: Request, svc: ReclaimDep) -> Response:
    """Keep (extend) or give up (confirm); on success back to the page, showing the new state."""
    case_id = svc.case_for_token(token) if TOKEN.fullmatch(token) else None
    if case_id is None:
        return not_found()
    try:
        submit_answer(svc, token, form)
    except NotFoundError:
        return not_found()
    except CorralError as exc:
        if exc.http_status >= 500:
            log.warning("the owner's answer to reclamation case %s failed: %s", case_id, exc)
        return html_response(answer_page(svc, case_id, form, exc.message), exc.http_status)
    return RedirectResponse(request.url.path, status_code=303, headers=SECURITY_HEADERS)


def html_response(doc: Element, status: int = 200) -> HTMLResponse:
    body = html.tostring(doc, doctype="<!DOCTYPE html>", method="html", encoding="unicode")
    return HTMLResponse(str(body), status_code=status, headers=SECURITY_HEADERS)


def not_found() -> HTMLResponse:
    """A wrong or cut link: says so, and nothing about any case."""
    return html_response(not_found_page(), 404)


__all__ = [
    "SECURITY_HEADERS",
    "RedactTokenPaths",
    "html_response",
    "not_found",
    "redact",
    "redact_token_paths",
    "router",
]
