"""The live environment's fencing: the manager's begin/poll over fence-method plugins.

The manager never waits (a round must stay short), while a fence agent may take a
minute: each fence runs in a worker thread and the manager polls it. A fence
begun again for the same host replaces the one the manager listens to; the old
one ends by its own deadline (every fence method has one).
"""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor

from corral.engines.ha_manager.env import FenceStatus
from corral.hypervisor.fence import FenceMethod, FenceOutcome, FenceResult

_STATUS = {
    FenceResult.fenced: FenceStatus.fenced,
    FenceResult.already_off: FenceStatus.already_off,
    FenceResult.failed: FenceStatus.failed,
    FenceResult.timeout: FenceStatus.failed,
}


class FenceRunner:
    def __init__(self, methods: Mapping[str, Mapping[str, FenceMethod]], workers: int = 4) -> None:
        """``methods``: host -> method name (as in the HA policy) -> the plugin for that host."""
        self.methods = methods
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fence")
        self.running: dict[str, Future[FenceOutcome]] = {}
        self.details: dict[str, str] = {}

    def begin(self, host: str, method: str) -> None:
        plugin = self.methods.get(host, {}).get(method)
        if plugin is None:
            done: Future[FenceOutcome] = Future()
            done.set_result(FenceOutcome(FenceResult.failed, f"no fence method {method!r}"))
            self.running[host] = done
            return
        self.running[host] = self.pool.submit(plugin.fence)

    def poll(self, host: str) -> FenceStatus:
        future = self.running.get(host)
        if future is None or not future.done():
            return FenceStatus.pending
        try:
            outcome = future.result()
        except Exception as exc:  # a plugin that raises has failed to fence, nothing more
            outcome = FenceOutcome(FenceResult.failed, exc.__class__.__name__)
        self.details[host] = outcome.detail
        return _STATUS[outcome.result]

    def close(self) -> None:
        self.pool.shutdown(wait=True)
