"""Fence through any agent that speaks the fence-agent protocol (fence_ipmilan & co).

The protocol: the agent reads ``key=value`` lines on stdin (``action=`` plus its own
options such as ``ip``, ``username``, ``password``, ``plug``) and answers with its exit
code; for ``status``, 0 means on, 2 off, anything else an error. Options go on stdin,
never in the argument list, so a password never shows in ``ps``.

Fencing is status, then off if it is on, then status again to prove it is off. The
agent runs with a list of arguments (no shell) in its own process group under one
deadline for the whole sequence; on timeout the group is killed with SIGKILL.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from corral.errors import ConfigError
from corral.hypervisor.fence.base import FenceMethod, FenceOutcome, FenceResult

STATUS_ON, STATUS_OFF = 0, 2
_KEY = re.compile(r"^[a-z][a-z0-9_]*$")
#: Option names whose values never leave this process except on the agent's stdin.
_SECRET = re.compile(r"pass|secret|key|token", re.IGNORECASE)


def is_secret_option(key: str) -> bool:
    """An option whose value is a secret (password, key, token...): never shown anywhere."""
    return bool(_SECRET.search(key))


@dataclass(frozen=True)
class _Answer:
    code: int | None  # None: timed out
    stderr: str


class FenceAgent(FenceMethod):
    name = "agent"
    description = "A fence-agent program (e.g. fence_ipmilan) driven through the standard protocol."
    parameters = {
        "command": "the agent and its fixed arguments, as a list (required)",
        "options": "key=value options sent on stdin (ip, username, password, plug, ...)",
        "timeout_s": "deadline for status, off and the proving status together, default 60",
    }

    def __init__(
        self, command: Sequence[str], options: Mapping[str, str], timeout_s: float = 60.0
    ) -> None:
        if not command:
            raise ConfigError("A fence agent needs a command; give the agent's path.")
        for key, value in options.items():
            if not _KEY.match(key) or key == "action":
                raise ConfigError(f"Fence agent option {key!r} is not allowed; use agent options.")
            if "\n" in str(value) or "\r" in str(value):
                raise ConfigError(f"Fence agent option {key!r} holds a line break; remove it.")
        self.command = tuple(command)
        self.options = {k: str(v) for k, v in options.items()}
        self.timeout_s = timeout_s

    def fence(self) -> FenceOutcome:
        deadline = time.monotonic() + self.timeout_s
        before = self._run("status", deadline)
        if before.code is None:
            return FenceOutcome(FenceResult.timeout, "status did not answer in time")
        if before.code == STATUS_OFF:
            return FenceOutcome(FenceResult.already_off, "status: off")
        off = self._run("off", deadline)
        if off.code is None:
            return FenceOutcome(FenceResult.timeout, "off did not answer in time")
        if off.code != 0:
            return FenceOutcome(FenceResult.failed, f"off exited {off.code}: {off.stderr}")
        after = self._run("status", deadline)
        if after.code is None:
            return FenceOutcome(FenceResult.timeout, "status after off did not answer in time")
        if after.code != STATUS_OFF:
            return FenceOutcome(
                FenceResult.failed, f"still not off after off (status {after.code})"
            )
        return FenceOutcome(FenceResult.fenced, "off, status: off")

    def status_off(self) -> bool | None:
        """True: off, False: on, None: the agent could not tell in time."""
        answer = self._run("status", time.monotonic() + self.timeout_s)
        if answer.code in (STATUS_ON, STATUS_OFF):
            return answer.code == STATUS_OFF
        return None

    def _stdin(self, action: str) -> bytes:
        lines = [f"action={action}"] + [f"{k}={v}" for k, v in self.options.items()]
        return ("\n".join(lines) + "\n").encode()

    def _run(self, action: str, deadline: float) -> _Answer:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return _Answer(None, "")
        proc = subprocess.Popen(  # a list of arguments, never a shell
            self.command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        try:
            _, err = proc.communicate(self._stdin(action), timeout=remaining)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            return _Answer(None, "")
        return _Answer(proc.returncode, self._scrub(err.decode(errors="replace")))

    def _scrub(self, text: str) -> str:
        """The agent's last error line, with secret option values blanked."""
        line = next((ln for ln in reversed(text.strip().splitlines()) if ln.strip()), "")
        for key, value in self.options.items():
            if value and is_secret_option(key):
                line = line.replace(value, "***")
        return line[:200]


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate()
