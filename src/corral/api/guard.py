"""The API's front door: who is asking, and how much they may send, before any body is read.

Why a pure ASGI middleware: a route's dependencies run only after FastAPI has read and parsed
the whole body, so an unauthenticated client could make the server hold any amount of data.
Here a request to a route that needs a token is refused (401) on its headers alone; every body
is counted while it streams and refused (413) at ``Settings.api_max_body_bytes``, with or without
a Content-Length; a JSON body nested too deeply or holding too long an array is refused (422)
before a route parses it. The caller (a Principal) is left in the request state for
``corral.api.deps.require``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import anyio.to_thread
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from corral.api.deps import ACTOR, BEARER
from corral.api.problems import problem
from corral.errors import AuthError
from corral.security.token_store import TokenStore

#: JSON bodies deeper than this are refused; Corral's own bodies are 3 levels deep.
MAX_JSON_DEPTH = 32
#: Arrays (and objects) with more members than this are refused.
MAX_JSON_ITEMS = 10_000
NO_CREDENTIALS = "this request needs 'Authorization: Bearer <token>'; see 'corral token create'."


class Guard:
    """Authenticate first, then stream the body with a byte limit and a JSON shape limit."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._secured: list[tuple[str, re.Pattern[str]]] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self._route_needs_token(scope):
            refusal = await self._authenticate(scope)
            if refusal is not None:
                await refusal(scope, receive, send)
                return
        limit: int = scope["app"].state.settings.api_max_body_bytes
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _too_large(limit)(scope, receive, send)
            return
        body = await _read_body(receive, limit)
        if body is None:
            await _too_large(limit)(scope, receive, send)
            return
        shape = _json_shape_problem(scope, body)
        if shape is not None:
            await problem(422, "validation-failed", shape)(scope, receive, send)
            return
        await self.app(scope, _replay(body, receive), send)

    def _route_needs_token(self, scope: Scope) -> bool:
        if self._secured is None:
            self._secured = _secured_operations(scope["app"].openapi())
        path: str = scope["path"]
        return any(
            method == scope["method"] and pattern.fullmatch(path)
            for method, pattern in self._secured
        )

    async def _authenticate(self, scope: Scope) -> JSONResponse | None:
        """None when the bearer token is valid, else the 401 to answer."""
        scheme, _, credentials = _header(scope, b"authorization").partition(" ")
        if scheme.lower() != "bearer" or not credentials.strip():
            return _unauthorized(AuthError.code, NO_CREDENTIALS)
        tokens: TokenStore = scope["app"].state.tokens
        try:
            who = await anyio.to_thread.run_sync(tokens.authenticate, credentials.strip())
        except AuthError as exc:
            return _unauthorized(exc.code, exc.message)
        scope.setdefault("state", {})[ACTOR] = who
        return None


def _secured_operations(openapi: dict[str, Any]) -> list[tuple[str, re.Pattern[str]]]:
    """(method, path pattern) of every operation the OpenAPI document says needs a bearer token.

    The document is the one public description of every route, so routes added later are
    guarded without a list to keep up to date here.
    """
    return [
        (method.upper(), pattern)
        for pattern, method, operation in _operations(openapi)
        if BEARER in {name for req in operation.get("security", []) for name in req}
    ]


def allowed_methods(openapi: dict[str, Any], path: str) -> list[str]:
    """The methods the API answers at ``path`` (for a 405's Allow header)."""
    methods = {m.upper() for pattern, m, _ in _operations(openapi) if pattern.fullmatch(path)}
    if "GET" in methods:
        methods.add("HEAD")
    return sorted(methods)


def _operations(openapi: dict[str, Any]) -> Iterator[tuple[re.Pattern[str], str, dict[str, Any]]]:
    for template, operations in openapi.get("paths", {}).items():
        pattern = re.compile(
            "".join(
                "[^/]+" if part.startswith("{") else re.escape(part)
                for part in re.split(r"(\{[^}]*\})", template)
            )
        )
        for method, operation in operations.items():
            yield pattern, method, operation


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return ""


def _content_length(scope: Scope) -> int | None:
    text = _header(scope, b"content-length").strip()
    return int(text) if text.isdigit() else None


def _unauthorized(code: str, detail: str) -> JSONResponse:
    """401 on the headers alone; the connection closes so an unread body is never taken in."""
    return problem(401, code, detail, headers={"Connection": "close"})


def _too_large(limit: int) -> JSONResponse:
    return problem(
        413,
        "payload-too-large",
        f"the request body is larger than the {limit} bytes this server accepts; send less.",
        headers={"Connection": "close"},
    )


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    """The whole body, or None as soon as it passes ``limit`` (the rest is never read)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def _json_shape_problem(scope: Scope, body: bytes) -> str | None:
    """Why a JSON body is refused before parsing by a route, or None when its shape is fine."""
    kind = _header(scope, b"content-type").split(";")[0].strip().lower()
    if not body or not (kind in ("", "application/json") or kind.endswith("+json")):
        return None
    try:
        value = json.loads(body)
    except RecursionError:
        return f"the JSON body is nested too deeply; at most {MAX_JSON_DEPTH} levels."
    except ValueError:  # not UTF-8 or not JSON
        return "the request body is not valid JSON (UTF-8); send a JSON object."
    for depth, size in _containers(value):
        if depth > MAX_JSON_DEPTH:
            return f"the JSON body is nested too deeply; at most {MAX_JSON_DEPTH} levels."
        if size > MAX_JSON_ITEMS:
            return f"a JSON array or object in the body has more than {MAX_JSON_ITEMS} members."
    return None


def _containers(value: object) -> Iterator[tuple[int, int]]:
    """(depth, member count) of every array and object in a parsed JSON value, without recursion."""
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            members = list(item.values())
        elif isinstance(item, list):
            members = item
        else:
            continue
        yield depth, len(members)
        if depth <= MAX_JSON_DEPTH:
            stack.extend((m, depth + 1) for m in members)
