"""``corral serve``: run the REST API."""

from __future__ import annotations

import functools
import os
import sys
from typing import TYPE_CHECKING

import typer

from corral.cli import context
from corral.config import Settings

if TYPE_CHECKING:
    from fastapi import FastAPI


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)


def serve(
    bind: str = typer.Option("127.0.0.1", "--bind", help="Address to listen on."),
    port: int = typer.Option(8080, help="Port to listen on."),
    host: str | None = typer.Option(None, "--host", hidden=True, help="Deprecated name of --bind."),
) -> None:
    """Serve the REST API (OpenAPI at /openapi.json, docs at /docs)."""
    if host is not None:
        typer.echo("warning: serve --host is deprecated; use --bind ADDRESS.", err=True)
        bind = host
    run_server(bind, port)


def run_server(host: str, port: int) -> None:
    """Serve with ``Settings.api_workers`` processes (default: one per CPU). One process
    serves in this process as before; several share one listening socket, each building its
    own services (database connections are never shared across processes)."""
    import uvicorn

    from corral.config import keep_files_private

    keep_files_private()
    settings = context.settings()
    workers = worker_count(settings)
    typer.echo(
        f"Corral on http://{host}:{port}  (dashboard: /, API docs: /docs, OpenAPI: /openapi.json)"
        + (f"; {workers} worker processes" if workers > 1 else "")
    )
    if workers == 1:
        uvicorn.run(worker_app(settings), host=host, port=port, log_level="warning")
        return
    _serve_in_processes(settings, host, port, workers)


def worker_count(settings: Settings) -> int:
    """``api_workers``, else one process per CPU: the dashboard's sessions live in the
    database (corral.services.web_sessions), so any worker serves any signed-in browser."""
    return settings.api_workers or os.cpu_count() or 1


def worker_app(settings: Settings, sole_process: bool = True) -> FastAPI:
    """The API app of one server process, its services built from ``settings``. In a server of
    several processes the parent has already failed the jobs a stopped server left running."""
    from corral.api.app import create_app
    from corral.inventory.service import Inventory

    if not sole_process:
        _die_with_parent()
    context.record_writes_as_os_user()
    inv = Inventory.from_settings(settings)
    app = create_app(inv, settings=settings, recover_interrupted_jobs=sole_process)
    _freeze_startup_objects(app)
    return app


def _freeze_startup_objects(app: FastAPI) -> None:
    """Move what start-up made (some 230,000 objects: the app, its routes, models and OpenAPI
    document, the ORM) out of the garbage collector's sight: they live as long as the process,
    and each full collection walked them all, 120-300 ms holding up every request of the
    worker (measured 5 or 6 times a worker in a 25 s run at 50 clients: the tail of the
    latencies). Requests' own objects are collected as before."""
    import gc

    app.openapi()  # built on the first request otherwise (the guard reads it)
    gc.collect()
    gc.freeze()


def _die_with_parent() -> None:
    """Have the kernel kill this worker when the server's main process dies, even by SIGKILL:
    a worker left behind would keep serving on the port (Linux's PR_SET_PDEATHSIG)."""
    if sys.platform != "linux":
        return
    import ctypes
    import signal

    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1: PR_SET_PDEATHSIG
    if os.getppid() == 1:  # the parent died before the line above took effect
        os._exit(1)


def _serve_in_processes(settings: Settings, host: str, port: int, workers: int) -> None:
    """uvicorn's process supervisor; each worker process calls ``worker_app`` with these
    settings (sent to it, not read again from the environment) and listens on its own socket
    of the port (see :mod:`corral.cli.serve_sockets`)."""
    import uvicorn

    from corral.cli.serve_sockets import supervisor
    from corral.inventory.service import Inventory
    from corral.services.jobs import JobService

    inv = Inventory.from_settings(settings)  # migrates once, before the workers race to
    JobService(inv.db).fail_interrupted()
    inv.db.dispose()
    factory = functools.partial(worker_app, settings, False)
    config = uvicorn.Config(
        factory, factory=True, host=host, port=port, workers=workers, log_level="warning"
    )
    supervisor(config, workers).run()
