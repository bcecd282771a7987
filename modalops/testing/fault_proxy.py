"""A fault-injecting HTTP proxy for an S3-compatible endpoint (tests and benchmarks/faults.py).

It forwards every request to the upstream (moto's server) and, at configurable rates, answers
instead with a 500/503 error, an S3 throttling error (503 SlowDown or 429, with S3's XML body),
resets the connection half-way through the response, or delays the request (a slow write:
the upstream receives the PUT only after the delay, so readers can be checked meanwhile).
Binds 127.0.0.1 only; stdlib only.
"""

from __future__ import annotations

import http.client
import random
import socket
import struct
import threading
import time
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

FAULT_KINDS = ("error", "throttle", "reset", "slow")

_ERROR_XML = (
    '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
    "<Message>{message}</Message><RequestId>fault-proxy</RequestId></Error>"
)


@dataclass
class FaultRates:
    """Probability per request of each fault (their sum at most 1)."""

    error: float = 0.0  # 500 InternalError or 503 ServiceUnavailable
    throttle: float = 0.0  # 503 SlowDown or 429 TooManyRequestsException
    reset: float = 0.0  # the upstream answered; the client gets half the response, then RST
    slow: float = 0.0  # the request waits `slow_s` before it reaches the upstream
    slow_s: float = 0.5

    def __post_init__(self) -> None:
        total = self.error + self.throttle + self.reset + self.slow
        if not 0.0 <= total <= 1.0:
            raise ValueError(f"fault rates sum to {total}; expected a value in [0, 1]")


class FaultProxy:
    """`with FaultProxy(upstream_url, FaultRates(error=0.2)) as proxy:` then point clients at
    `proxy.url`; `proxy.injected` counts the faults injected by kind, `proxy.requests` all."""

    def __init__(self, upstream: str, rates: FaultRates | None = None, seed: int = 0):
        parts = urlsplit(upstream)
        self.upstream_host = parts.hostname or "127.0.0.1"
        self.upstream_port = parts.port or 80
        self.rates = rates or FaultRates()
        self.injected: Counter[str] = Counter()
        self.requests = 0
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        assert self._server is not None, "start() the proxy first"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def draw(self) -> str | None:
        """The fault for the next request, or None (thread-safe, reproducible from the seed)."""
        with self._lock:
            self.requests += 1
            x = self._rng.random()
            r = self.rates
            for kind, p in (
                ("error", r.error),
                ("throttle", r.throttle),
                ("reset", r.reset),
                ("slow", r.slow),
            ):
                if x < p:
                    self.injected[kind] += 1
                    return kind
                x -= p
            return None

    def start(self) -> FaultProxy:
        proxy = self

        class Handler(_ProxyHandler):
            owner = proxy

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="fault-proxy", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class _ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, and `Expect: 100-continue` answered for us
    owner: FaultProxy

    def log_message(self, format, *args) -> None:  # noqa: A002 - the stdlib's signature
        pass

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = bytearray()
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(out)
                out += self.rfile.read(size)
                self.rfile.readline()
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _send_error_xml(self, status: int, code: str, message: str) -> None:
        body = _ERROR_XML.format(code=code, message=message).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        if status in (429, 503):
            self.send_header("Retry-After", "0")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _forward(self, body: bytes) -> tuple[int, str, list[tuple[str, str]], bytes]:
        conn = http.client.HTTPConnection(
            self.owner.upstream_host, self.owner.upstream_port, timeout=60
        )
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() != "transfer-encoding"}
            headers.pop("Expect", None)
            if body or self.command in ("PUT", "POST"):
                headers["Content-Length"] = str(len(body))
            conn.request(self.command, self.path, body=body or None, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            return resp.status, resp.reason, resp.getheaders(), data
        finally:
            conn.close()

    def _handle(self) -> None:
        body = self._body()
        injected = self.owner.draw()
        if injected == "error":
            if self.owner._rng.random() < 0.5:
                self._send_error_xml(500, "InternalError", "injected internal error")
            else:
                self._send_error_xml(503, "ServiceUnavailable", "injected unavailability")
            return
        if injected == "throttle":
            if self.owner._rng.random() < 0.5:
                self._send_error_xml(503, "SlowDown", "Please reduce your request rate.")
            else:
                self._send_error_xml(429, "TooManyRequestsException", "injected throttling")
            return
        if injected == "slow":
            time.sleep(self.owner.rates.slow_s)
        status, reason, headers, data = self._forward(body)
        if injected == "reset":
            # the upstream did the work; the client gets the first half of the response's bytes
            # (mid-headers for a small one, mid-body for an object), then a TCP reset
            lines = [f"HTTP/1.1 {status} {reason}"]
            lines += [f"{k}: {v}" for k, v in headers if k.lower() != "transfer-encoding"]
            raw = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
            if self.command != "HEAD":
                raw += data
            self.wfile.write(raw[: max(len(raw) // 2, 1)])
            self.wfile.flush()
            # linger 0: close() sends RST, not FIN
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            self.connection.close()
            return
        self.send_response(status, reason)
        for k, v in headers:
            if k.lower() not in ("connection", "transfer-encoding", "content-length"):
                self.send_header(k, v)
        length = dict((k.lower(), v) for k, v in headers).get("content-length")
        self.send_header(
            "Content-Length", length if self.command == "HEAD" and length else str(len(data))
        )
        self.end_headers()
        if self.command != "HEAD" and data:
            self.wfile.write(data)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle  # noqa: N815 - stdlib names
