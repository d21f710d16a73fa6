"""Real local endpoints for the channels: an HTTP server that records what it is sent (and
can answer errors first), and one that accepts connections and never answers (a dead one)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    url: str
    fail_first: int = 0  # answer 500 to this many requests first
    requests: list[Received] = field(default_factory=list)
    got: threading.Event = field(default_factory=threading.Event)


@contextmanager
def http_receiver(fail_first: int = 0) -> Iterator[Receiver]:
    holder: list[Receiver] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            rec = holder[0]
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            rec.requests.append(Received(self.path, dict(self.headers.items()), body))
            failing = len(rec.requests) <= rec.fail_first
            self.send_response(500 if failing else 200)
            self.send_header("Content-Length", "0")
            self.end_headers()
            if not failing:
                rec.got.set()

        def log_message(self, *_args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    holder.append(Receiver(f"http://127.0.0.1:{server.server_address[1]}/hook", fail_first))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield holder[0]
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def black_hole() -> Iterator[str]:
    """A URL whose server accepts the connection and then says nothing, ever."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/hook"
    finally:
        sock.close()
