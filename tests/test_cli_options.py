"""The CLI's options mean the same everywhere: -o/--output, -f/--fleet-file or --live, --bind."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import typer.main

from corral.cli.main import app

#: Commands that work on a fleet: each takes --fleet-file/-f or --live.
FLEET_COMMANDS = {
    "plan place", "plan consolidate", "plan rebalance", "plan evacuate", "plan whatif",
    "plan forecast", "ha check", "cost vm", "cost chargeback", "cost licences", "sprawl findings",
}  # fmt: skip
#: Fleet commands still on the old --inventory-file option (the cost/sprawl CLI moves them).
NOT_YET: set[str] = set()


def _leaves() -> dict[str, set[str]]:
    """Every leaf command ("plan place") with the option strings it accepts."""
    out: dict[str, set[str]] = {}

    def walk(cmd: object, path: list[str]) -> None:
        subs = getattr(cmd, "commands", None)
        if subs:
            for name, sub in subs.items():
                walk(sub, [*path, name])
            return
        params = getattr(cmd, "params", [])
        out[" ".join(path)] = {o for p in params for o in getattr(p, "opts", [])}

    walk(typer.main.get_group(app), [])
    return out


def test_output_format_is_always_dash_o() -> None:
    leaves = _leaves()
    with_output = {name for name, opts in leaves.items() if "--output" in opts}
    assert with_output and all("-o" in leaves[name] for name in with_output)
    assert not [name for name, opts in leaves.items() if "--format" in opts and name != "export"]


def test_fleet_commands_take_a_fleet_file_or_live() -> None:
    leaves = _leaves()
    for name in sorted(FLEET_COMMANDS - NOT_YET):
        assert {"--fleet-file", "-f", "--live"} <= leaves[name], name
    moved = sorted(n for n in NOT_YET if "--fleet-file" in leaves[n])
    assert moved == [], f"now on --fleet-file, remove from NOT_YET: {moved}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve(home: Path, *flags: str) -> tuple[bytes, str]:
    """Start ``corral serve FLAGS``, fetch the OpenAPI document, SIGKILL it; (body, stderr)."""
    port = _free_port()
    env = {**os.environ, "CORRAL_HOME": str(home)}
    env.pop("CORRAL_DATABASE_URL", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "corral", "serve", *flags, "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        body = b""
        for _ in range(600):
            if proc.poll() is not None:
                break
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/openapi.json") as r:
                    body = r.read()
                break
            except OSError:
                time.sleep(0.1)
    finally:
        proc.send_signal(signal.SIGKILL)
        _, err = proc.communicate(timeout=30)
    return body, err.decode()


def test_serve_binds_with_bind_and_still_with_host(tmp_path: Path) -> None:
    body, err = _serve(tmp_path / "a", "--bind")
    assert b'"openapi"' in body and "deprecated" not in err
    body, err = _serve(tmp_path / "b", "--host")
    assert b'"openapi"' in body
    assert "serve --host is deprecated; use --bind" in err
