"""A plain-socket HTTP/1.1 client that keeps sending a large body until the server answers.

Why not httpx: an HTTP library sends the whole body before it reads the answer, and loses the
answer when the server closes early. Here the body streams in chunks and, between chunks, the
socket is checked for an answer, as an attacker's client or a patient proxy would see it.
"""

from __future__ import annotations

import json
import select
import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

CHUNK = 64 * 1024


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    sent: int  # body bytes the server's socket took before it answered or closed

    def json(self) -> Any:
        return json.loads(self.body)


def send_large(
    url: str,
    method: str,
    path: str,
    size: int,
    headers: dict[str, str] | None = None,
    chunked: bool = False,
) -> Answer:
    """Send ``size`` bytes of JSON-looking body; stop as soon as the server answers."""
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=60)
    head = {"Host": parts.netloc, "Content-Type": "application/json", **(headers or {})}
    if chunked:
        head["Transfer-Encoding"] = "chunked"
    else:
        head["Content-Length"] = str(size)
    lines = [f"{method} {path} HTTP/1.1", *(f"{k}: {v}" for k, v in head.items()), "", ""]
    sock.sendall("\r\n".join(lines).encode())
    sent = 0
    block = b'{"purpose":"' + b"x" * (CHUNK - 12)
    try:
        while sent < size and not select.select([sock], [], [], 0)[0]:
            piece = block[: min(CHUNK, size - sent)]
            sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
            sent += len(piece)
        if chunked and sent >= size:
            sock.sendall(b"0\r\n\r\n")
    except (BrokenPipeError, ConnectionResetError):
        pass
    return _read_answer(sock, sent)


def _read_answer(sock: socket.socket, sent: int) -> Answer:
    data = b""
    try:
        while b"\r\n\r\n" not in data:
            more = sock.recv(65536)
            if not more:
                break
            data += more
        head, _, rest = data.partition(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        headers = {
            k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in header_lines)
        }
        length = int(headers.get("content-length", "0"))
        while len(rest) < length:
            more = sock.recv(65536)
            if not more:
                break
            rest += more
    finally:
        sock.close()
    return Answer(int(status_line.split()[1]), headers, rest[:length], sent)
