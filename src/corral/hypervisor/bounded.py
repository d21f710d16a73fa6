"""A hypervisor whose every call answers within a deadline, or fails as an unreachable host.

libvirt calls cannot be cancelled: a frozen daemon holds the caller until it wakes. Actions
(metadata writes, power, the watcher's subscription) go through this wrapper so that a frozen
host costs the caller ``timeout_s`` and an :class:`HostUnreachableError` (exit code 5), never a
hung command, request or executor. See :mod:`corral.hypervisor.deadline`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from corral.errors import CorralError, HostTimeoutError, HostUnreachableError
from corral.hypervisor import deadline
from corral.hypervisor.base import Hypervisor

#: ``release(host, broken=..., late=...)``: what to do with the pooled connection afterwards.
Release = Callable[..., None]


class BoundedHypervisor:
    """Forwards each method call to the connection ``open_`` gives, under a deadline.

    The connection itself is opened inside the bounded call, since opening a frozen host hangs
    as well. A call that ran late is forgotten by the pool (its thread may still hold the
    connection); one that failed drops the connection.
    """

    def __init__(
        self,
        host: str,
        open_: Callable[[], Hypervisor],
        release: Release,
        key: str,
        timeout_s: float,
    ) -> None:
        self._host = host
        self._open = open_
        self._release = release
        self._key = key
        self._timeout_s = timeout_s

    def __getattr__(self, name: str) -> Callable[..., Any]:
        if name.startswith("_"):
            raise AttributeError(name)

        def call(*args: Any, **kwargs: Any) -> Any:
            return self._call(name, lambda: getattr(self._open(), name)(*args, **kwargs))

        return call

    def _call(self, what: str, fn: Callable[[], Any]) -> Any:
        out = deadline.call(self._key, fn, self._timeout_s)
        if out.status is deadline.Status.BUSY:
            raise HostUnreachableError(
                f"host {self._host} has not yet answered an earlier request; try again later."
            )
        # the connection's own open has the same bound and can time out first: the same answer
        if out.status is deadline.Status.LATE or isinstance(out.error, HostTimeoutError):
            self._release(self._host, late=True)
            raise HostTimeoutError(
                f"host {self._host} did not answer within {self._timeout_s:g} s ({what}); "
                "if it wakes, the action may still happen and the next sync will show it."
            )
        if isinstance(out.error, CorralError):
            self._release(self._host, broken=True)
            raise out.error
        if out.error is not None:
            raise out.error
        return out.value


__all__ = ["BoundedHypervisor"]
