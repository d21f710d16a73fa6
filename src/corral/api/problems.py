"""Errors over HTTP: one RFC 9457 problem body, and how routes declare the ones they answer.

Every error Corral's API answers is ``application/problem+json`` with a stable ``code``.
Routes list the statuses they may answer with ``responses=error_responses(401, 404)``, so the
OpenAPI document says exactly what a client can get back (FastAPI would otherwise describe 422
as its own JSON and leave 401/404/409 out).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from http import HTTPStatus
from typing import Any

import orjson
from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

PROBLEM = "application/problem+json"
PROBLEM_BASE = "https://corral.invalid/problems/"


class FieldError(BaseModel):
    """One invalid field of a refused request (422 only)."""

    loc: list[str] = Field(description="Where: 'body', 'query', 'path' then the field's path.")
    msg: str
    type: str | None = None


class Problem(BaseModel):
    """RFC 9457 problem details, with Corral's stable error ``code``."""

    type: str = Field(description="A URI naming the kind of problem.")
    title: str = Field(description="The HTTP status phrase.")
    status: int
    detail: str = Field(description="One sentence: what is wrong and what to do.")
    code: str = Field(description="Stable machine-readable code, e.g. 'not-found'.")
    errors: list[FieldError] | None = None


#: What each status means in Corral's API, as the OpenAPI document says it.
DESCRIPTIONS: dict[int, str] = {
    400: "The request could not be read.",
    401: "A valid 'Authorization: Bearer <token>' is needed.",
    403: "The token may not do this.",
    404: "No such object.",
    405: "This method is not allowed here (see the Allow header).",
    409: "The request conflicts with the object's current state.",
    413: "The request body is larger than the server accepts.",
    415: "The request body must be JSON.",
    422: "The request is well-formed but a value is not valid.",
    502: "A hypervisor host or the metrics store did not answer as expected.",
    503: "A service Corral depends on is not available.",
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` of a route answering these error statuses as problem+json."""
    return {
        status: {
            "description": DESCRIPTIONS.get(status, HTTPStatus(status).phrase),
            "content": {PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for status in statuses
    }


def problem(
    status: int,
    code: str,
    detail: str,
    errors: list[dict[str, Any]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """A problem+json response; a 401 also says which scheme to use."""
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + code,
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "code": code,
    }
    if errors:
        body["errors"] = errors
    all_headers = dict(headers or {})
    if status == 401:
        all_headers.setdefault("WWW-Authenticate", "Bearer")
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=all_headers or None)


def openapi_with_problems(app: FastAPI) -> Callable[[], dict[str, Any]]:
    """``app.openapi`` that also holds the ``Problem`` schema every error response refers to.

    A route that declared no 422 but takes parameters gets FastAPI's default 422; that one is
    rewritten to problem+json too, because the server answers every 422 that way.
    """

    def build() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        key = _routes_key(app)
        built = _BUILT.get(key)
        if built is None:
            built = _BUILT[key] = orjson.dumps(_build(app))
        app.openapi_schema = orjson.loads(built)  # a copy of its own for every app
        return app.openapi_schema

    return build


# Documents already built in this process, as JSON, by what they were built from: the guard
# reads the document on an app's first request, and building it takes about a second, which
# every new app (every test, every server worker) would pay again for the same routes.
_BUILT: dict[tuple[object, ...], bytes] = {}


def _routes_key(app: FastAPI) -> tuple[object, ...]:
    """What the document is made of: the app's titles, and each route's kind, path, methods
    and endpoint (by name, since an app's own small endpoints are closures made with it)."""
    routes = tuple(
        (
            type(r).__name__,
            getattr(r, "path", None),
            tuple(sorted(getattr(r, "methods", None) or ())),
            _qualified(getattr(r, "endpoint", None)),
            getattr(r, "include_in_schema", None),
        )
        for r in app.routes
    )
    return (app.title, app.version, app.description, routes)


def _qualified(endpoint: object) -> str | None:
    if endpoint is None:
        return None
    return f"{getattr(endpoint, '__module__', '')}.{getattr(endpoint, '__qualname__', '')}"


def _build(app: FastAPI) -> dict[str, Any]:
    doc = get_openapi(
        title=app.title,
        version=app.version,
        description=app.description,
        routes=app.routes,
    )
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    template = "#/components/schemas/{model}"
    schema = Problem.model_json_schema(ref_template=template)
    schemas.update(schema.pop("$defs", {}))
    schemas["Problem"] = schema
    for path in doc.get("paths", {}).values():
        for operation in path.values():
            responses = operation.get("responses", {})
            if "422" in responses and PROBLEM not in responses["422"].get("content", {}):
                responses["422"] = error_responses(422)[422]
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    _document_permissions(app, doc)
    return doc


def _document_permissions(app: FastAPI, doc: dict[str, Any]) -> None:
    """Each operation names its permission (``x-corral-permission``) and answers 401 and 403."""
    from corral.api.deps import api_routes, declared_permission

    for route in api_routes(app.routes):
        permission = declared_permission(route)
        if permission is None:
            continue
        for method in route.methods or ():
            operation = doc["paths"][route.path_format].get(method.lower())
            if operation is None:
                continue
            operation["x-corral-permission"] = permission.value
            responses = operation.setdefault("responses", {})
            for status in (401, 403):
                responses.setdefault(str(status), error_responses(status)[status])
