"""Rendering a page: the templates, the security headers, the signed-in viewer, forms.

Every response of the dashboard goes through ``render`` or ``redirect``, so every one carries
the same strict Content-Security-Policy (scripts and styles only from this server, none
inline) and forbids caching, framing and referrers.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Coroutine, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, select_autoescape

from corral.api.deps import get_tokens
from corral.domain.access import Permission, Target
from corral.domain.text import bad_character
from corral.errors import AuthError, CorralError, ValidationError
from corral.services import ha_drill_report
from corral.services.audit import Actor, acting_as
from corral.services.planning import Fleet
from corral.services.requests import RequestService
from corral.services.users import UserService
from corral.services.web_sessions import (
    COOKIE,
    Credential,
    Session,
    Sessions,
    Viewer,
    csrf_ok,
    due_for_check,
    may,
    sees_fleet,
)

HERE = Path(__file__).parent
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
}
MAX_FORM_BYTES = 16_384

templates = Environment(
    loader=ChoiceLoader(
        [FileSystemLoader(HERE / "templates"), FileSystemLoader(ha_drill_report.TEMPLATE_DIR)]
    ),
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
)


def when(value: datetime | date | str | None, width: int = 16) -> str:
    """A moment as 'YYYY-MM-DD HH:MM' (``width`` 19 adds seconds, 10 is the date alone),
    whether the service gave a datetime or an ISO string."""
    if value is None or value == "":
        return ""
    text = value.isoformat() if isinstance(value, datetime | date) else str(value)
    return text[:width].replace("T", " ")


def _epoch(value: float | None) -> str:
    """Epoch seconds (as the alert service keeps them) as 'YYYY-MM-DD HH:MM' UTC."""
    return "" if value is None else when(datetime.fromtimestamp(value, UTC))


templates.filters["when"] = when
templates.filters["epoch"] = _epoch


class SignInNeeded(Exception):
    """No signed-in session: the browser goes to the sign-in page."""


class NotAllowed(Exception):
    """Signed in, but this viewer may not do this."""


def sessions(request: Request) -> Sessions:
    store: Sessions = request.app.state.web_sessions
    return store


def session_of(request: Request) -> Session | None:
    """The request's session, looked up once per request (a database read)."""
    scope_state = request.scope.setdefault("state", {})
    if _SESSION not in scope_state:
        scope_state[_SESSION] = sessions(request).get(request.cookies.get(COOKIE))
    found: Session | None = scope_state[_SESSION]
    return found


#: Where a request keeps its session once looked up.
_SESSION = "corral_web_session"


def authorize(
    request: Request,
    permission: Permission,
    *,
    target: Target | None = None,
    fleet: bool = False,
) -> Viewer:
    """The signed-in viewer when they may use ``permission`` (on ``target``, or across the
    whole fleet when ``fleet``); else sign in, or a 403 page."""
    session = session_of(request)
    viewer = session.viewer if session else None
    if session is None or viewer is None:
        raise SignInNeeded
    if due_for_check(session):
        viewer = _recheck(request, session, viewer)
    if not may(viewer, permission, target) or (fleet and not sees_fleet(viewer, permission)):
        raise NotAllowed
    return viewer


def _recheck(request: Request, session: Session, viewer: Viewer) -> Viewer:
    """Read the viewer's principal again: a revoked token or disabled user ends the session,
    changed roles or departments apply from now on."""
    try:
        if viewer.credential is Credential.token:
            principal = get_tokens(request).principal_for(viewer.key)
        else:
            principal = UserService(get_tokens(request).db).principal(viewer.key)
    except AuthError:
        sessions(request).end(request.cookies.get(COOKIE))
        raise SignInNeeded from None
    session.viewer = replace(viewer, principal=principal)
    session.checked = time.time()
    sessions(request).save(request.cookies.get(COOKIE), session)
    return session.viewer


@contextmanager
def acting(request: Request, viewer: Viewer) -> Iterator[None]:
    """The writes inside are recorded in the audit log as ``viewer``'s, from this page."""
    client = request.client.host if request.client else "unknown"
    origin = f"web {client} {request.method} {request.url.path}"
    with acting_as(Actor(viewer.name, viewer.principal.role_names, origin)):
        yield


def render(
    request: Request,
    template: str,
    status: int = 200,
    session: Session | None = None,
    **context: Any,
) -> HTMLResponse:
    session = session or session_of(request)
    viewer = session.viewer if session else None
    body = templates.get_template(template).render(
        request=request,
        viewer=viewer,
        csrf=session.csrf if session else "",
        may=lambda permission: may(viewer, Permission(permission)),
        path=request.url.path,
        **context,
    )
    return HTMLResponse(body, status_code=status, headers=HEADERS)


def redirect(url: str) -> Response:
    return RedirectResponse(url, status_code=303, headers=HEADERS)


def set_cookie(request: Request, response: Response, sid: str) -> None:
    response.set_cookie(
        COOKIE,
        sid,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )


async def read_form(request: Request) -> dict[str, str]:
    """A small url-encoded form whose CSRF field matches the session's (else ValidationError)."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        raise ValidationError("send this with the form on the page.")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise ValidationError("the form is too long; shorten what you typed.")
    try:
        fields = parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=20)
    except (UnicodeDecodeError, ValueError):
        raise ValidationError("the form could not be read; send it again from the page.") from None
    form = {k: v[-1] for k, v in fields.items()}
    if any(bad_character(v, multiline=True) for v in form.values()):
        raise ValidationError("the form holds a control or invalid character; type it again.")
    if not csrf_ok(session_of(request), form.get("csrf", "")):
        raise NotAllowed
    return form


def error_page(request: Request, status: int, message: str) -> HTMLResponse:
    return render(request, "error.html", status=status, status_code=status, message=message)


Handler = Callable[[Request], Coroutine[Any, Any, Response]]


class PageRoute(APIRoute):
    """A dashboard route: Corral's errors become an HTML page with the one-sentence message."""

    def get_route_handler(self) -> Handler:
        handler = super().get_route_handler()

        async def page(request: Request) -> Response:
            try:
                return await handler(request)
            except SignInNeeded:
                return redirect(f"/login?next={_next(request)}")
            except NotAllowed:
                return error_page(request, 403, "you may not do this; ask an administrator.")
            except CorralError as exc:
                return error_page(request, exc.http_status, exc.message)

        return page


def _next(request: Request) -> str:
    from urllib.parse import quote

    target = request.url.path if request.method == "GET" else "/"
    if request.method == "GET" and request.url.query:
        target += "?" + request.url.query
    return quote(target, safe="")


def live_fleet(request: Request) -> Fleet:
    """The live inventory's fleet as of its last sync, read again only when the inventory
    changed (the request service's cache, corral.services.live_capacity): reading it whole
    takes most of a page's time."""
    requests: RequestService = request.app.state.requests
    return requests.fleet()


def query(request: Request, names: Mapping[str, str]) -> dict[str, str]:
    """The named query parameters, stripped; absent ones are ''."""
    return {n: request.query_params.get(n, d).strip() for n, d in names.items()}
