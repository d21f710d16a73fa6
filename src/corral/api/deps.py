"""Dependencies injected into routes: the services, and the bearer-token check for writes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from corral.errors import AuthError
from corral.inventory.service import Inventory
from corral.reclaim.service import ReclaimService
from corral.security.token_store import TokenStore

_bearer = HTTPBearer(auto_error=False, description="A token from 'corral token create NAME'.")


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
    tokens: Annotated[TokenStore, Depends(get_tokens)],
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> str:
    """Every write needs a valid bearer token; returns the token's name (the actor)."""
    if creds is None or creds.scheme.lower() != "bearer":
        raise AuthError("this request changes data and needs 'Authorization: Bearer <token>'.")
    return tokens.verify(creds.credentials)


Actor = Annotated[str, Depends(require_token)]
