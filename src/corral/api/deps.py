"""Dependencies injected into routes: the services, and who may call what.

Every route declares the one permission it needs with ``require``::

    @router.get("/vms/{uuid}")
    def get_vm(uuid: str, who: Annotated[Principal, require(Permission.vm_read, vm_target)]): ...

``require`` authenticates the bearer token (the guard has usually done so from the headers
alone, before the body was read), refuses a caller whose roles lack the permission (403), and,
given a target resolver, answers 404 for an object outside the caller's departments — the same
answer as for an object that does not exist, so a requester learns nothing of others' VMs.
It also names the caller for the audit log of this request. The policy itself is
``corral.domain.access``; see docs/auth.md.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Annotated, Any

import anyio.to_thread
from fastapi import Depends, Request
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.routing import BaseRoute

from corral.domain.access import Permission, Principal, Target, decide
from corral.errors import AuthError, ForbiddenError, NotFoundError
from corral.inventory.service import Inventory, check_uuid
from corral.reclaim.service import ReclaimService
from corral.security.token_store import TokenStore
from corral.services.audit import Actor as AuditActor
from corral.services.audit import set_actor

#: The request state key where the guard leaves the verified caller (a Principal).
ACTOR = "corral_actor"

#: The name of the bearer scheme in the OpenAPI document; the guard reads it there.
BEARER = "HTTPBearer"
_bearer = HTTPBearer(
    scheme_name=BEARER,
    auto_error=False,
    description="A token from 'corral token create NAME --user USER'; it carries USER's roles.",
)


def get_inventory(request: Request) -> Inventory:
    inv: Inventory = request.app.state.inventory
    return inv


def get_tokens(request: Request) -> TokenStore:
    store: TokenStore = request.app.state.tokens
    return store


def get_reclaim(request: Request) -> ReclaimService:
    svc: ReclaimService = request.app.state.reclaim
    return svc


# The dependencies are coroutines: FastAPI runs a plain function dependency in a worker
# thread, and two such hops (inventory, tokens) were a tenth of a list request's CPU.
async def _inventory(request: Request) -> Inventory:
    return get_inventory(request)


async def _tokens(request: Request) -> TokenStore:
    return get_tokens(request)


async def _reclaim(request: Request) -> ReclaimService:
    return get_reclaim(request)


InventoryDep = Annotated[Inventory, Depends(_inventory)]
ReclaimDep = Annotated[ReclaimService, Depends(_reclaim)]


async def current_principal(
    request: Request,
    tokens: Annotated[TokenStore, Depends(_tokens)],
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The caller of a valid bearer token, with the roles their user holds now."""
    verified = request.scope.get("state", {}).get(ACTOR)
    if isinstance(verified, Principal):
        return verified
    if creds is None or creds.scheme.lower() != "bearer":
        raise AuthError("this request needs 'Authorization: Bearer <token>'.")
    return await anyio.to_thread.run_sync(tokens.authenticate, creds.credentials)


#: Finds the object a request acts on (from its path), for the department check.
TargetOf = Callable[[Request], Target]


class _Requirement:
    """The dependency ``require`` builds; ``permission`` is read back by the route matrix."""

    def __init__(self, permission: Permission, target: TargetOf | None) -> None:
        self.permission = permission
        self.target = target

    async def __call__(
        self, request: Request, who: Annotated[Principal, Depends(current_principal)]
    ) -> Principal:
        if not decide(who, self.permission):
            raise ForbiddenError(
                f"user {who.user!r} ({who.role_names or 'no role'}) may not "
                f"{self.permission.value}; ask an administrator for a role that may."
            )
        if self.target is not None:
            target = await anyio.to_thread.run_sync(self.target, request)
            if not decide(who, self.permission, target):
                raise NotFoundError("no such object among those you may see.")
        client = request.client.host if request.client else "unknown"
        set_actor(
            AuditActor(
                who.user, who.role_names, f"api {client} {request.method} {request.url.path}"
            )
        )
        return who


def require(permission: Permission, target: TargetOf | None = None) -> Any:
    """The dependency of a route that needs ``permission`` (on the object ``target`` finds)."""
    return Depends(_Requirement(permission, target))


class _RequirementName:
    """``_Requirement`` answering the caller's user name (for the transitional aliases)."""

    def __init__(self, permission: Permission) -> None:
        self.permission = permission
        self._check = _Requirement(permission, None)

    async def __call__(
        self, request: Request, who: Annotated[Principal, Depends(current_principal)]
    ) -> str:
        return (await self._check(request, who)).user


#: Transitional, for routes written before permissions (other branches): the caller's user
#: name, allowed to operators and administrators only. Declare ``require(...)`` instead.
Actor = Annotated[str, Depends(_RequirementName(Permission.fleet_operate))]
#: Transitional: a fleet-wide read for operators, auditors and administrators only.
Reader = Annotated[str, Depends(_RequirementName(Permission.ops_read))]


def audited_as_owner(what: str) -> Any:
    """For a public write authorized by the e-mailed one-case token: audit it as the owner's.

    The origin names the client's address and ``what`` was answered, never the path, which
    holds the token.
    """

    async def owner(request: Request) -> None:
        client = request.client.host if request.client else "unknown"
        set_actor(AuditActor("owner-by-mail", "", f"api {client} {what}"))

    return Depends(owner)


def declared_permission(route: APIRoute) -> Permission | None:
    """The permission a route declares with ``require``, or None for a public route."""
    stack = list(route.dependant.dependencies)
    while stack:
        dep = stack.pop()
        if isinstance(dep.call, _Requirement | _RequirementName):
            return dep.call.permission
        stack.extend(dep.dependencies)
    return None


def api_routes(routes: Iterable[BaseRoute]) -> Iterator[APIRoute]:
    """Every API route, also inside included routers (FastAPI may keep those nested)."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        nested = getattr(route, "original_router", None)
        if nested is not None:
            yield from api_routes(nested.routes)


def vm_target(request: Request) -> Target:
    """The department of the VM named by the ``uuid`` path parameter (404 when none)."""
    inv: Inventory = request.app.state.inventory
    vm = inv.find_vm(check_uuid(str(request.path_params.get("uuid", ""))))
    return Target(vm.department)


def case_target(request: Request) -> Target:
    """The department of the reclamation case named by the ``case_id`` path parameter."""
    raw = str(request.path_params.get("case_id", ""))
    if not raw.isdigit() or not 1 <= int(raw) < 2**31:
        return Target(None)  # the route refuses the id itself (422) when the caller may
    svc: ReclaimService = request.app.state.reclaim
    return Target(svc.case(int(raw)).department)
