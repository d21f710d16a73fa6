"""One listening socket per server worker (SO_REUSEPORT), so the kernel spreads connections.

With one socket shared by every worker, the worker that wakes first accepts every connection
waiting: 50 clients connecting at once were measured split 48 to 2 between two workers, so one
worker queued nearly every request while the other idled (issue 16: REST pages at 50 clients).
Each worker here listens on its own socket of the same address and port, all with
SO_REUSEPORT: the kernel hashes each new connection to one of the listening sockets, so the
workers get about as many connections each. The parent keeps every socket open, so while a
worker is replaced its socket's connections wait in the queue for the new one rather than being
refused. Linux only lets sockets of the same user join one port's group. Where the option does
not exist (or for a Unix socket or a file descriptor), the workers share one socket as before.
"""

from __future__ import annotations

import logging
import socket
import sys

from uvicorn.config import STARTUP_FAILURE, Config
from uvicorn.supervisors.multiprocess import Multiprocess, Process

log = logging.getLogger("uvicorn.error")


def supervisor(config: Config, workers: int) -> Multiprocess:
    """uvicorn's supervisor of ``workers`` processes, one socket each where the OS allows."""
    if not hasattr(socket, "SO_REUSEPORT") or config.uds is not None or config.fd is not None:
        return Multiprocess(config, sockets=[config.bind_socket()])
    return SocketPerWorker(config, listeners(config.host, config.port, workers))


def listeners(host: str, port: int, count: int) -> list[socket.socket]:
    """``count`` sockets bound to one address and port (the first one's, when ``port`` is 0),
    inheritable by the workers; each listens once its worker's server starts."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    bound: list[socket.socket] = []
    for _ in range(count):
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            log.error("cannot listen on %s port %d: %s", host, port, exc)
            sys.exit(STARTUP_FAILURE)
        port = sock.getsockname()[1]
        sock.set_inheritable(True)
        bound.append(sock)
    return bound


class SocketPerWorker(Multiprocess):
    """uvicorn's supervisor where worker ``i`` always serves socket ``i``: a worker that dies
    or is restarted (SIGHUP) is replaced on the same socket."""

    def __init__(self, config: Config, sockets: list[socket.socket]) -> None:
        super().__init__(config, sockets)
        self.processes_num = len(sockets)

    def _spawn(self, slot: int) -> Process:
        worker = Process(self.config, [self.sockets[slot]])
        worker.start()
        return worker

    def init_processes(self) -> None:
        self.processes = [self._spawn(slot) for slot in range(self.processes_num)]

    def keep_subprocess_alive(self) -> None:
        timeout = self.config.timeout_worker_healthcheck
        for slot, worker in enumerate(self.processes):
            if self.should_exit.is_set():
                return
            if worker.is_alive(timeout=timeout):
                continue
            worker.kill()  # hung or gone: make sure
            worker.join()
            if worker.exitcode == STARTUP_FAILURE:  # it would fail again: stop the server
                log.error("worker %s failed to start; stopping the server.", worker.pid)
                self.should_exit.set()
                return
            log.info("worker %s died; starting another on its socket", worker.pid)
            self.processes[slot] = self._spawn(slot)

    def restart_all(self) -> None:
        """One worker after another (SIGHUP): its socket queues the connections meanwhile."""
        for slot, worker in enumerate(self.processes):
            if self.should_exit.is_set():
                return
            worker.terminate()
            worker.join()
            self.processes[slot] = self._spawn(slot)
