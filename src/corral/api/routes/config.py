"""Corral about itself: the effective settings (token needed) and whether it can work (open)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from corral import __version__
from corral.api.deps import require
from corral.api.problems import error_responses, problem
from corral.api.routes.metrics import get_metrics_store
from corral.config import Settings, Source, describe
from corral.domain.access import Permission as Perm
from corral.domain.access import Principal
from corral.services.health import CheckStatus, check_health

router = APIRouter(prefix="/api/v1", tags=["meta"])


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(get_settings)]


class SettingPublic(BaseModel):
    name: str
    env: str = Field(description="The environment variable that sets it.")
    value: str | None = Field(description="The effective value; secrets are '********'.")
    source: Source = Field(description="Where the value came from.")
    help: str


class ConfigPublic(BaseModel):
    settings: list[SettingPublic]


class CheckPublic(BaseModel):
    name: str
    status: CheckStatus
    detail: str


class HealthPublic(BaseModel):
    status: CheckStatus
    version: str
    checks: list[CheckPublic]


@router.get("/config", response_model=ConfigPublic, responses=error_responses(401))
def config(
    settings: SettingsDep, _who: Annotated[Principal, require(Perm.ops_read)]
) -> ConfigPublic:
    """Every setting's effective value and source, as ``corral config show`` prints them."""
    return ConfigPublic(
        settings=[
            SettingPublic(name=s.name, env=s.env, value=s.value, source=s.source, help=s.help)
            for s in describe(settings)
        ]
    )


@router.get("/health", response_model=HealthPublic, responses=error_responses(503))
def health(
    request: Request, _who: Annotated[Principal, require(Perm.fleet_read)]
) -> HealthPublic | JSONResponse:
    """200 when the database and the metrics store answer; 503 (problem+json) when one does not."""
    result = check_health(request.app.state.inventory.db, lambda: get_metrics_store(request))
    if not result.ok:
        down = "; ".join(f"{c.name}: {c.detail}" for c in result.down())
        return problem(503, "unhealthy", f"Corral cannot reach a service it needs: {down}")
    checks = [CheckPublic(name=c.name, status=c.status, detail=c.detail) for c in result.checks]
    return HealthPublic(status=CheckStatus.ok, version=__version__, checks=checks)
