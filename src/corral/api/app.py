"""The FastAPI application: routers, problem+json errors, services on app.state."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException

from corral import __version__, web
from corral.api.guard import Guard, allowed_methods
from corral.api.problems import openapi_with_problems, problem
from corral.api.routes import alerts as alerts_routes
from corral.api.routes import audit as audit_routes
from corral.api.routes import backup as backup_routes
from corral.api.routes import blueprints as blueprint_routes
from corral.api.routes import config as config_routes
from corral.api.routes import cost as cost_routes
from corral.api.routes import forensic as forensic_routes
from corral.api.routes import ha as ha_routes
from corral.api.routes import inventory as inventory_routes
from corral.api.routes import jobs as jobs_routes
from corral.api.routes import metric_analysis as metric_analysis_routes
from corral.api.routes import metrics as metrics_routes
from corral.api.routes import plan as plan_routes
from corral.api.routes import policy as policy_routes
from corral.api.routes import polling as polling_routes
from corral.api.routes import provision as provision_routes
from corral.api.routes import reclaim as reclaim_routes
from corral.api.routes import requests as requests_routes
from corral.api.routes import respond_page
from corral.api.routes import restore_points as restore_point_routes
from corral.api.routes import sim as sim_routes
from corral.api.routes import sprawl as sprawl_routes
from corral.api.routes import units as unit_routes
from corral.config import Settings, load_settings
from corral.errors import AuthError, CorralError
from corral.inventory.service import Inventory
from corral.reclaim.service import ReclaimService
from corral.reclaim.setup import reclaim_service
from corral.security.token_store import TokenStore
from corral.services.jobs import JobKind, JobService
from corral.services.request_setup import quota_service, request_provisioner, request_service
from corral.services.stores import MetricsStore

log = logging.getLogger(__name__)


class Health(BaseModel):
    """The server answers; nothing more is checked (a load balancer's probe)."""

    status: Literal["ok"]
    version: str


#: Every router of the API, mounted explicitly: a missing module is an import error, not a
#: silently missing surface.
ROUTERS = (
    inventory_routes.router,
    metrics_routes.router,
    reclaim_routes.router,
    respond_page.router,
    jobs_routes.router,
    config_routes.router,
    plan_routes.router,
    ha_routes.router,
    sim_routes.router,
    sprawl_routes.router,
    cost_routes.router,
    audit_routes.router,
    backup_routes.router,
    restore_point_routes.router,
    provision_routes.router,
    alerts_routes.router,
    requests_routes.router,
    metric_analysis_routes.router,
    forensic_routes.router,
    blueprint_routes.router,
    unit_routes.router,
    policy_routes.router,
    polling_routes.router,
)
#: The kinds of job the routes submit (a queued job is run again after a restart).
JOB_KINDS: tuple[JobKind[Any], ...] = (
    *plan_routes.JOB_KINDS,
    *sim_routes.JOB_KINDS,
    *sprawl_routes.JOB_KINDS,
    *backup_routes.JOB_KINDS,
    *restore_point_routes.JOB_KINDS,
    *ha_routes.JOB_KINDS,
    *forensic_routes.JOB_KINDS,
    *requests_routes.JOB_KINDS,
    *unit_routes.JOB_KINDS,
)


def create_app(
    inventory: Inventory,
    tokens: TokenStore | None = None,
    reclaim: ReclaimService | None = None,
    settings: Settings | None = None,
    metrics: MetricsStore | None = None,
    recover_interrupted_jobs: bool = True,
) -> FastAPI:
    """The app; services not given are built from the settings (read once, by the caller).
    ``recover_interrupted_jobs``: False in the workers of a server of several processes."""
    settings = settings or load_settings()
    app = FastAPI(
        title="Corral",
        version=__version__,
        description="One place to see, control and plan a fleet of virtual machines.",
        docs_url=None,  # served by corral.web from locally installed files (no CDN)
        redoc_url=None,
        lifespan=_alert_loop(inventory, settings, metrics),
    )
    app.state.inventory = inventory
    app.state.tokens = tokens or TokenStore(inventory.db)
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.reclaim = reclaim or reclaim_service(inventory, settings)
    app.state.requests = request_service(inventory, settings)
    app.state.quotas = quota_service(inventory, settings)
    app.state.provisioner = request_provisioner(inventory, settings, app.state.requests)
    app.state.jobs = JobService(inventory.db, app.state)
    app.state.jobs.register(*JOB_KINDS)
    app.state.jobs.recover(interrupted=recover_interrupted_jobs)
    for router in ROUTERS:
        app.include_router(router)
    respond_page.redact_token_paths()
    web.mount(app)

    @app.get("/healthz", tags=["meta"], response_model=Health)
    def healthz() -> Health:
        return Health(status="ok", version=__version__)

    _install_error_handlers(app)
    app.add_middleware(Guard)
    app.openapi = openapi_with_problems(app)  # type: ignore[method-assign]
    return app


def _alert_loop(
    inventory: Inventory, settings: Settings, metrics: MetricsStore | None
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """While the server runs, the alert evaluation loop runs beside it if the setting
    ``alert_loop_in_server`` says so (one evaluator leads across servers on PostgreSQL)."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if not settings.alert_loop_in_server:
            yield
            return
        from corral.services import alerts_cli
        from corral.services.alert_loop import Background

        running = Background(alerts_cli.loop(settings, inventory, metrics))
        try:
            yield
        finally:
            running.stop()

    return lifespan


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(CorralError)
    async def corral_error(_req: Request, exc: CorralError) -> JSONResponse:
        status = 401 if type(exc) is AuthError else exc.http_status
        if status >= 500:
            log.warning("request failed: %s", exc.message)
        return problem(status, exc.code, exc.message)

    @app.exception_handler(RequestValidationError)
    async def invalid(_req: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {
                "loc": [str(p) for p in e.get("loc", ())],
                "msg": str(e.get("msg", ""))[:300],
                "type": e.get("type"),
            }
            for e in exc.errors()
        ]
        first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
        where = ".".join(first["loc"])
        return problem(422, "validation-failed", f"{where}: {first['msg']}", errors)

    @app.exception_handler(HTTPException)
    async def http_error(req: Request, exc: HTTPException) -> JSONResponse:
        code = {404: "not-found", 405: "method-not-allowed", 401: "unauthorized"}.get(
            exc.status_code, "http-error"
        )
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            # Starlette names only the first route on the path; the API may answer more.
            allowed = allowed_methods(app.openapi(), req.url.path)
            if allowed:
                headers["Allow"] = ", ".join(allowed)
            detail = (
                f"{req.method} is not allowed here; use {headers.get('Allow', 'another method')}."
            )
            return problem(405, code, detail, headers=headers)
        return problem(exc.status_code, code, str(exc.detail), headers=headers)

    @app.exception_handler(Exception)
    async def unexpected(_req: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error")
        return problem(500, "internal-error", "Corral hit an unexpected error; see the server log.")
