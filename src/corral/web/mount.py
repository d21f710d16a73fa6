"""Putting the dashboard on the API's app: pages, static files, and the offline API docs.

Why the docs live here: FastAPI's default /docs loads Swagger UI from a CDN, so it is blank
without internet. The Swagger UI files come from the ``fastapi-offline`` package that the
set-up installs (never copied into this repository); the page that starts it is Corral's own,
with the same no-inline-script policy as the dashboard.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from corral.services.web_sessions import Sessions
from corral.web import (
    routes_audit,
    routes_auth,
    routes_backup,
    routes_drills,
    routes_fleet,
    routes_jobs,
    routes_money,
    routes_ops,
    routes_plan,
    routes_quota,
    routes_requests,
    routes_units,
)
from corral.web.pages import HERE, templates

#: Swagger UI's own files, as the pip package installed them.
SWAGGER_DIR = Path(str(files("fastapi_offline") / "static"))
DOCS_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'"
)


def mount(app: FastAPI) -> None:
    """Add the dashboard's routes and files to ``app`` (created with docs_url=None)."""
    app.state.web_sessions = Sessions(app.state.inventory.db)
    routers = (
        routes_auth,
        routes_fleet,
        routes_money,
        routes_requests,
        routes_ops,
        routes_drills,
        routes_backup,
        routes_jobs,
        routes_audit,
        routes_plan,
        routes_quota,
        routes_units,
    )
    for module in routers:
        app.include_router(module.router)
    app.mount("/static/web", StaticFiles(directory=HERE / "static"), name="web-static")
    app.mount("/static/swagger", StaticFiles(directory=SWAGGER_DIR), name="swagger-static")

    @app.get("/docs", include_in_schema=False)
    def docs(_request: Request) -> HTMLResponse:
        body = templates.get_template("docs.html").render(title=f"{app.title} — API")
        return HTMLResponse(
            body,
            headers={"Content-Security-Policy": DOCS_CSP, "X-Content-Type-Options": "nosniff"},
        )
