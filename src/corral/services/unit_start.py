"""Starting a unit's tier: its hooks (argv lists with timeouts, never a shell) and its
readiness check (libvirt reports the VM running; with a port, a TCP connection succeeds).

The outside world (processes, sockets, the clock) sits behind :class:`Starter`, whose
methods a test replaces only by giving it other real callables (a local listener, a
recorded sleep), never by mocking.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Callable, Mapping

from corral.domain.blueprint import Hook, Ready

#: What a hook sees of Corral's environment: only where programs are (no setting, no secret).
_KEPT = ("PATH", "LANG", "LC_ALL")
POLL_S = 1.0


class StartFailed(Exception):
    """A hook or readiness check failed: the reason a user reads."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Starter:
    def __init__(
        self,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        connect_timeout_s: float = 2.0,
    ) -> None:
        self.sleep = sleep
        self.monotonic = monotonic
        self.connect_timeout_s = connect_timeout_s

    def run_hook(self, hook: Hook, env: Mapping[str, str], what: str) -> None:
        """Run ``hook`` (no shell) with the unit's facts in its environment; StartFailed
        naming the program when it fails, cannot start or outlives its timeout."""
        full = {k: os.environ[k] for k in _KEPT if k in os.environ} | dict(env)
        program = hook.argv[0]
        try:
            done = subprocess.run(  # an argv list, never a shell
                list(hook.argv),
                env=full,
                timeout=hook.timeout_s,
                capture_output=True,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise StartFailed(
                f"{what} hook {program} did not finish within {hook.timeout_s:g} s."
            ) from None
        except OSError as exc:
            raise StartFailed(f"{what} hook {program} could not run: {exc.strerror}.") from None
        if done.returncode != 0:
            raise StartFailed(f"{what} hook {program} failed with exit code {done.returncode}.")

    def wait_ready(self, ready: Ready | None, vm: str, running: Callable[[], bool]) -> None:
        """Wait until the VM runs and (with a port) answers; StartFailed after the timeout."""
        timeout = ready.timeout_s if ready is not None else 120.0
        deadline = self.monotonic() + timeout
        while True:
            up = running()
            if up and (ready is None or ready.port is None):
                return
            if up and ready and ready.port and self._answers(ready.address or vm, ready.port):
                return
            if self.monotonic() >= deadline:
                what = f"port {ready.port}" if ready and ready.port else "running"
                raise StartFailed(f"{vm} was not ready ({what}) within {timeout:g} s.")
            self.sleep(POLL_S)

    def _answers(self, address: str, port: int) -> bool:
        try:
            with socket.create_connection((address, port), timeout=self.connect_timeout_s):
                return True
        except OSError:
            return False


__all__ = ["StartFailed", "Starter"]
