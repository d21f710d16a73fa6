"""Signing in and out: an API token today, the users of the self-service issue later."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from corral.api.deps import get_tokens
from corral.domain.access import Role as AccessRole
from corral.errors import AuthError
from corral.web.pages import (
    PageRoute,
    read_form,
    redirect,
    render,
    session_of,
    sessions,
    set_cookie,
)
from corral.web.session import COOKIE, Role, Viewer

router = APIRouter(route_class=PageRoute, include_in_schema=False)


def landing(viewer: Viewer | None) -> str:
    """Each role's own first page."""
    if viewer is None:
        return "/login"
    return "/manager" if viewer.role is Role.manager else "/admin"


def safe_next(target: str) -> str:
    """Only a path on this site (never //host or a scheme): no open redirect."""
    if target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"


@router.get("/")
def home(request: Request) -> Response:
    session = session_of(request)
    return redirect(landing(session.viewer if session else None))


@router.get("/login")
def login_page(request: Request) -> Response:
    session = session_of(request)
    if session is not None and session.viewer is not None:
        return redirect(landing(session.viewer))
    sid = None
    if session is None:  # a pre-sign-in session holds the form's CSRF token
        sid, session = sessions(request).start()
    target = safe_next(request.query_params.get("next", "/"))
    response = render(request, "login.html", session=session, next=target, problem=None)
    if sid is not None:
        set_cookie(request, response, sid)
    return response


#: The REST API's roles that see and act on the whole fleet: the dashboard's administrator.
FLEET_ROLES = frozenset({AccessRole.admin, AccessRole.operator})


@router.post("/login")
async def login(request: Request) -> Response:
    if session_of(request) is None:  # the form's session ended (a restart, 8 idle hours)
        return redirect("/login")
    form = await read_form(request)
    token = form.get("token", "").strip()
    try:
        name = get_tokens(request).verify(token)
        principal = get_tokens(request).authenticate(token)
    except AuthError:
        return render(
            request,
            "login.html",
            status=401,
            next=safe_next(form.get("next", "/")),
            problem="that token is not valid or was revoked; create one with "
            "'corral token create NAME'.",
        )
    if not principal.roles & FLEET_ROLES:
        # Every page so far shows the whole fleet and its owners: only roles that see the
        # whole fleet in the REST API may sign in (docs/auth.md); the others' pages are to come.
        return render(
            request,
            "login.html",
            status=403,
            next=safe_next(form.get("next", "/")),
            problem=f"user {principal.user} ({principal.role_names or 'no role'}) has no "
            "dashboard pages yet: they are for the admin and operator roles.",
        )
    store = sessions(request)
    store.end(request.cookies.get(COOKIE))
    viewer = Viewer(name=name, role=Role.administrator)
    sid, _ = store.start(viewer)
    target = safe_next(form.get("next", "/"))
    response = redirect(landing(viewer) if target == "/" else target)
    set_cookie(request, response, sid)
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    await read_form(request)
    sessions(request).end(request.cookies.get(COOKIE))
    response = redirect("/login")
    response.delete_cookie(COOKIE, path="/")
    return response
