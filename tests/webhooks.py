"""A webhook receiver on 127.0.0.1 for the notification tests: it verifies each signature with
:func:`rollbackkit.notify.signing.verify`, dedupes by the SIGNED body's ``id`` (the delivery header is only a
hint: a replay may change it) and can refuse its first attempts (503) or never answer at all (a dead endpoint)."""

from __future__ import annotations

import json
import socket
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from rollbackkit.errors import SignatureInvalid
from rollbackkit.notify.signing import verify

SECRET = "s3cret-webhook-sentinel-7f1d"


@dataclass
class Receiver:
    """What the receiver saw: every attempt, the verified deliveries (first of each signed body's id), duplicates."""

    url: str = ""
    secret: str = SECRET
    refuse: int = 0  # answer 503 to this many attempts first
    silent: bool = False  # never answer (hold the connection until the receiver stops)
    attempts: list[str] = field(default_factory=list)
    delivered: dict[str, dict[str, Any]] = field(default_factory=dict)
    duplicates: list[str] = field(default_factory=list)
    bad_signatures: list[str] = field(default_factory=list)
    headers: dict[str, dict[str, str]] = field(default_factory=dict)
    stopped: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def events(self) -> Counter[str]:
        """How many verified deliveries of each event."""
        with self.lock:
            return Counter(body["event"] for body in self.delivered.values())

    def handle(self, handler: BaseHTTPRequestHandler) -> tuple[int, bytes]:
        body = handler.rfile.read(int(handler.headers.get("Content-Length", 0)))
        delivery = handler.headers.get("X-Rollbackkit-Delivery", "")
        with self.lock:
            self.attempts.append(delivery)
            if len(self.attempts) <= self.refuse:
                return 503, b"down"
        try:
            verify(self.secret.encode(), body, handler.headers.get("X-Rollbackkit-Signature", ""))
        except SignatureInvalid as exc:
            with self.lock:
                self.bad_signatures.append(exc.message)
            return 401, b"bad signature"
        said = json.loads(body)
        with self.lock:
            if said["id"] in self.delivered:  # the signed id: a replay with another delivery header is caught
                self.duplicates.append(said["id"])
            else:
                self.delivered[said["id"]] = said
                self.headers[said["id"]] = dict(handler.headers.items())
        return 200, b"ok"


@contextmanager
def receiving(refuse: int = 0, silent: bool = False, secret: str = SECRET) -> Iterator[Receiver]:
    """A receiver on 127.0.0.1 (a free port) for the block."""
    receiver = Receiver(secret=secret, refuse=refuse, silent=silent)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            if receiver.silent:
                receiver.attempts.append(self.headers.get("X-Rollbackkit-Delivery", ""))
                receiver.stopped.wait(60)
                return
            code, said = receiver.handle(self)
            self.send_response(code)
            self.send_header("Content-Length", str(len(said)))
            self.end_headers()
            self.wfile.write(said)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        receiver.stopped.set()
        server.shutdown()
        server.server_close()


def refused_url() -> str:
    """A URL on 127.0.0.1 where nothing listens (connection refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/hook"
