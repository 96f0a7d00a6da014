"""A small HTTP proxy on 127.0.0.1 in front of a store's S3 port: it adds a fixed delay to every request
(store latency, e.g. 20 ms) and counts requests and response body bytes. Used by the fleet integration
tests (what a refresh or a fetch costs, against the real SeaweedFS) and by bench/fleet.py.

The Host header is passed through unchanged, so S3 signatures made for the proxy's address still verify
at the store. `on_request(method, path)` runs before a request is forwarded (a test stops the store
there); when the store cannot be reached the client's connection is closed without an answer, as a
stopped store's would be.
"""

from __future__ import annotations

import http.client
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade"}


@dataclass
class Counts:
    requests: int = 0
    body_bytes: int = 0
    peak: int = 0  # most requests in flight at once
    log: list[tuple[str, str, int, int]] = field(default_factory=list)  # method, path, status, body bytes


class DelayProxy:
    def __init__(self, upstream_port: int, delay: float = 0.020, on_request=None):
        self.upstream_port, self.delay, self.on_request = upstream_port, delay, on_request
        self._lock = threading.Lock()
        self.counts = Counts()
        self._active = 0
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def _upstream(self) -> http.client.HTTPConnection:
                conn = getattr(self, "_conn", None)
                if conn is None:
                    conn = self._conn = http.client.HTTPConnection("127.0.0.1", proxy.upstream_port, timeout=60)
                return conn

            def _handle(self):
                with proxy._lock:
                    proxy._active += 1
                    proxy.counts.peak = max(proxy.counts.peak, proxy._active)
                try:
                    self._forward()
                finally:
                    with proxy._lock:
                        proxy._active -= 1

            def _forward(self):
                time.sleep(proxy.delay)
                if proxy.on_request:
                    proxy.on_request(self.command, self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP}
                for attempt in (1, 2):  # a kept-alive upstream connection may have been closed meanwhile
                    try:
                        conn = self._upstream()
                        conn.request(self.command, self.path, body=body, headers=headers)
                        resp = conn.getresponse()
                        data = resp.read()
                        break
                    except (OSError, http.client.HTTPException):
                        self._conn = None
                        if attempt == 2:
                            self.close_connection = True  # the store is gone: no answer at all
                            return
                # counted before the answer goes out: once the client has it, take() sees this request
                sent = 0 if self.command == "HEAD" else len(data)
                with proxy._lock:
                    proxy.counts.requests += 1
                    proxy.counts.body_bytes += sent
                    proxy.counts.log.append((self.command, self.path, resp.status, sent))
                self.send_response_only(resp.status, resp.reason)
                for k, v in resp.getheaders():
                    if k.lower() not in HOP and k.lower() != "content-length":
                        self.send_header(k, v)
                if self.command != "HEAD" and resp.status not in (204, 304):
                    self.send_header("Content-Length", str(len(data)))
                elif self.command == "HEAD" and resp.getheader("Content-Length"):
                    self.send_header("Content-Length", resp.getheader("Content-Length"))
                self.end_headers()
                if sent:
                    self.wfile.write(data)

            do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> DelayProxy:  # noqa: PYI034 - not subclassed
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def take(self) -> Counts:
        """The counts since the last take(), and start counting again."""
        with self._lock:
            out, self.counts = self.counts, Counts()
        return out
