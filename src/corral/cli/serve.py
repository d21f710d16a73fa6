"""``corral serve``: run the REST API."""

from __future__ import annotations

import typer

from corral.cli import context


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
    import uvicorn

    from corral.api.app import create_app
    from corral.config import keep_files_private

    keep_files_private()
    inv = context.inventory()
    typer.echo(
        f"Corral on http://{host}:{port}  (dashboard: /, API docs: /docs, OpenAPI: /openapi.json)"
    )
    app = create_app(inv, context.tokens(), settings=context.settings())
    uvicorn.run(app, host=host, port=port, log_level="warning")
