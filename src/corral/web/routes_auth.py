"""Signing in and out: a user's name and password, or an API token (which carries its user)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from corral.api.deps import get_tokens
from corral.domain.access import Permission
from corral.errors import AuthError
from corral.services.users import UserService
from corral.services.web_sessions import COOKIE, Credential, Viewer, may
from corral.web.pages import (
    PageRoute,
    read_form,
    redirect,
    render,
    session_of,
    sessions,
    set_cookie,
)

router = APIRouter(route_class=PageRoute, include_in_schema=False)


def landing(viewer: Viewer | None) -> str:
    """Each viewer's own first page, for what their role decides: the audit log for an
    auditor, the fleet for those who run it (admin, operator), the queue for an approver,
    their own requests for a requester, else the VMs of their departments."""
    if viewer is None:
        return "/login"
    if may(viewer, Permission.audit_read) and not may(viewer, Permission.fleet_operate):
        return "/audit"  # an auditor reads everything and changes nothing: the log first
    for permission, page in (
        (Permission.fleet_analyse, "/admin"),
        (Permission.request_decide, "/approvals"),
        (Permission.request_create, "/requests"),
    ):
        if may(viewer, permission):
            return page
    return "/vms"


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


@router.post("/login")
async def login(request: Request) -> Response:
    if session_of(request) is None:  # the form's session ended (a restart, 8 idle hours)
        return redirect("/login")
    form = await read_form(request)
    target = safe_next(form.get("next", "/"))
    try:
        viewer = await run_in_threadpool(_sign_in, request, form)  # argon2 takes a while
    except AuthError as exc:
        return render(request, "login.html", status=401, next=target, problem=exc.message)
    if not viewer.principal.roles:
        return render(
            request,
            "login.html",
            status=403,
            next=target,
            problem=f"user {viewer.name} holds no role yet; ask an administrator "
            "('corral user grant').",
        )
    store = sessions(request)
    store.end(request.cookies.get(COOKIE))
    sid, _ = store.start(viewer)
    response = redirect(landing(viewer) if target == "/" else target)
    set_cookie(request, response, sid)
    return response


def _sign_in(request: Request, form: dict[str, str]) -> Viewer:
    """The viewer a password (user + password) or an API token stands for; AuthError else."""
    user, password = form.get("user", "").strip(), form.get("password", "")
    if user and password:
        principal = UserService(get_tokens(request).db).sign_in(user, password)
        return Viewer(principal, Credential.password, principal.user)
    token = form.get("token", "").strip()
    if not token:
        raise AuthError("give your user name and password, or an API token.")
    try:
        name, principal = get_tokens(request).identify(token)
    except AuthError:
        raise AuthError(
            "that token is not valid or was revoked; create one with 'corral token create NAME'."
        ) from None
    return Viewer(principal, Credential.token, name)


@router.post("/logout")
async def logout(request: Request) -> Response:
    await read_form(request)
    sessions(request).end(request.cookies.get(COOKIE))
    response = redirect("/login")
    response.delete_cookie(COOKIE, path="/")
    return response
