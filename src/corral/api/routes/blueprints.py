"""The blueprint catalog over REST: thin calls to corral.services.blueprints.

Reading it needs ``fleet.read`` (every role: requesters choose from it); changing it needs
``vm.provision``, like the template catalog. A blueprint is requested through
``POST /api/v1/requests`` with ``blueprint`` set.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request, status
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from corral.api.deps import require
from corral.api.pagination import Cursor, Limit, Page, paginate
from corral.api.problems import error_responses
from corral.api.schemas import FreeText, Line
from corral.domain.access import Permission as Perm
from corral.domain.access import Principal
from corral.domain.blueprint import Blueprint
from corral.services.blueprints import BlueprintService
from corral.services.templates import TemplateService

router = APIRouter(prefix="/api/v1", tags=["blueprints"])

Name = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")]
PathName = Annotated[Line, Path(max_length=64)]


class TierBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    template: Name
    count: int = Field(default=1, ge=1, le=50)
    vcpus: int | None = Field(default=None, ge=1, le=512)
    memory_mib: int | None = Field(default=None, ge=64, le=2**34)
    disk_gb: float | None = Field(default=None, ge=0, le=1e6)
    order: int = Field(default=0, ge=-1000, le=1000, description="Lower tiers are made first.")
    start_delay_s: float = Field(
        default=0.0, ge=0, le=3600, description="On every start, wait after the tier before."
    )
    networks: list[Name] = Field(
        default_factory=list,
        max_length=4,
        description="Networks the tier's VMs join besides their unit's own (policy-checked).",
    )


class BlueprintBody(BaseModel):
    """A named list of tiers, requested and provisioned as one unit."""

    model_config = ConfigDict(extra="forbid")

    name: Name
    description: Annotated[FreeText, StringConstraints(max_length=4096)] | None = None
    tiers: list[TierBody] = Field(min_length=1, max_length=16)


def _blueprints(request: Request) -> BlueprintService:
    db = request.app.state.inventory.db
    return BlueprintService(db, TemplateService(db, request.app.state.settings.boot_dir))


@router.get("/blueprints", response_model=Page[Blueprint], responses=error_responses(401, 403, 422))
def list_blueprints(
    request: Request,
    _who: Annotated[Principal, require(Perm.fleet_read)],
    limit: Limit = 100,
    cursor: Cursor = None,
) -> Page[Blueprint]:
    return paginate(_blueprints(request).all(), lambda b: (b.name,), limit, cursor)


@router.get(
    "/blueprints/{name}", response_model=Blueprint, responses=error_responses(401, 403, 404, 422)
)
def get_blueprint(
    request: Request, name: PathName, _who: Annotated[Principal, require(Perm.fleet_read)]
) -> Blueprint:
    return _blueprints(request).get(name)


@router.post(
    "/blueprints",
    response_model=Blueprint,
    status_code=status.HTTP_201_CREATED,
    responses=error_responses(401, 403, 409, 413, 422),
)
def add_blueprint(
    request: Request,
    body: BlueprintBody,
    who: Annotated[Principal, require(Perm.vm_provision)],
) -> Blueprint:
    """Add a blueprint whose every tier's template is in the catalog."""
    data = body.model_dump(exclude_none=True)
    return _blueprints(request).add_mapping(data, "the blueprint", who.user)


@router.delete(
    "/blueprints/{name}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=error_responses(401, 403, 404, 422),
)
def remove_blueprint(
    request: Request, name: PathName, _who: Annotated[Principal, require(Perm.vm_provision)]
) -> None:
    """Remove a blueprint; the requests made from it keep their copy of its tiers."""
    _blueprints(request).remove(name)
