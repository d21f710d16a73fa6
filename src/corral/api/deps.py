"""Dependencies injected into routes: the services, and the bearer-token check.

A route that depends on ``require_token`` (every write, and every read of people's data until
the role model comes) is authenticated by ``corral.api.guard`` before its body is read; the
dependency then finds the verified name in the request state, and checks itself otherwise.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from corral.errors import AuthError
from corral.inventory.service import Inventory
from corral.reclaim.service import ReclaimService
from corral.security.token_store import TokenStore

#: The request state key where the guard leaves the verified token's name.
ACTOR = "corral_actor"

#: The name of the bearer scheme in the OpenAPI document; the guard reads it there.
BEARER = "HTTPBearer"
_bearer = HTTPBearer(
    scheme_name=BEARER, auto_error=False, description="A token from 'corral token create NAME'."
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


InventoryDep = Annotated[Inventory, Depends(get_inventory)]
ReclaimDep = Annotated[ReclaimService, Depends(get_reclaim)]


def require_token(
    request: Request,
    tokens: Annotated[TokenStore, Depends(get_tokens)],
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> str:
    """A valid bearer token; returns the token's name (the actor)."""
    verified = request.scope.get("state", {}).get(ACTOR)
    if isinstance(verified, str):
        return verified
    if creds is None or creds.scheme.lower() != "bearer":
        raise AuthError("this request needs 'Authorization: Bearer <token>'.")
    return tokens.verify(creds.credentials)


Actor = Annotated[str, Depends(require_token)]
#: A read of people's data (owners, e-mail addresses): needs a token, whoever holds it.
Reader = Annotated[str, Depends(require_token)]
