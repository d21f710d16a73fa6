"""The FastAPI application: routers, problem+json errors, services on app.state."""

from __future__ import annotations

import importlib
import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from corral import __version__
from corral.config import Settings, load_settings
from corral.errors import AuthError, CorralError
from corral.inventory.service import Inventory
from corral.metrics.store.base import MetricsStore
from corral.reclaim.service import ReclaimService
from corral.reclaim.setup import reclaim_service
from corral.security.token_store import TokenStore

log = logging.getLogger(__name__)

PROBLEM = "application/problem+json"
PROBLEM_BASE = "https://corral.invalid/problems/"

#: Optional routers from other areas: mounted when the module exists.
EXTRA_ROUTERS = ("corral.api.routes.metrics", "corral.api.routes.reclaim")


def problem(
    status: int, code: str, detail: str, errors: list[dict[str, Any]] | None = None
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + code,
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "code": code,
    }
    if errors:
        body["errors"] = errors
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


def create_app(
    inventory: Inventory,
    tokens: TokenStore | None = None,
    reclaim: ReclaimService | None = None,
    settings: Settings | None = None,
    metrics: MetricsStore | None = None,
) -> FastAPI:
    """The app; services not given are built from the settings (read once, by the caller)."""
    settings = settings or load_settings()
    app = FastAPI(
        title="Corral",
        version=__version__,
        description="One place to see, control and plan a fleet of virtual machines.",
    )
    app.state.inventory = inventory
    app.state.tokens = tokens or TokenStore(inventory.db)
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.reclaim = reclaim or reclaim_service(inventory, settings)
    from corral.api.routes import inventory as inventory_routes
    from corral.api.routes import respond_page

    app.include_router(inventory_routes.router)
    app.include_router(respond_page.router)
    respond_page.redact_token_paths()
    for name in EXTRA_ROUTERS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        app.include_router(module.router)

    @app.get("/healthz", tags=["meta"])
    def healthz() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    _install_error_handlers(app)
    return app


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
    async def http_error(_req: Request, exc: HTTPException) -> JSONResponse:
        code = {404: "not-found", 405: "method-not-allowed", 401: "unauthorized"}.get(
            exc.status_code, "http-error"
        )
        return problem(exc.status_code, code, str(exc.detail))

    @app.exception_handler(Exception)
    async def unexpected(_req: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error")
        return problem(500, "internal-error", "Corral hit an unexpected error; see the server log.")
