"""A small in-memory stand-in for the Airflow 3.3 pools/connections REST API, served on 127.0.0.1 over real
HTTP (the requests the client sends are the real ones): for the cases the local stack cannot show cheaply
(401/403, a pool in use at the moment of its delete, a write failing midway). The stack test
(tests/integration/stack/test_instance_settings.py) runs the same client against the real API."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlparse


class FakeAirflow:
    def __init__(self):
        self.pools: dict[str, dict] = {"default_pool": {"name": "default_pool", "slots": 128, "description": "Default pool",
                                                        "include_deferred": False}}
        self.connections: dict[str, str] = {}
        self.status: int | None = None  # answer every request with this status
        self.fail: dict[tuple[str, str], int] = {}  # (method, pool) -> status
        self.in_use: dict[str, int] = {}  # pool -> running slots
        self.in_use_on_get: dict[str, int] = {}  # pool -> running slots from the second GET of it on
        self.requests: list[tuple[str, str, dict | None]] = []
        self.tokens: list[str | None] = []
        self.queries: list[str] = []
        fake = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def _send(self, code: int, body: dict | None = None):
                data = json.dumps(body or {}).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _handle(self, method: str):
                url = urlparse(self.path)
                n = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(n)) if n else None
                fake.requests.append((method, url.path, body))
                fake.tokens.append(self.headers.get("Authorization"))
                fake.queries.append(url.query)
                if fake.status:
                    return self._send(fake.status, {"detail": "nope"})
                parts = url.path.removeprefix("/api/v2/").split("/", 1)
                kind, name = parts[0], unquote(parts[1]) if len(parts) > 1 else None
                if (method, name) in fake.fail:
                    return self._send(fake.fail[(method, name)], {"detail": "failed on purpose"})
                if kind == "connections" and method == "GET":
                    if name in fake.connections:
                        return self._send(200, {"connection_id": name, "conn_type": fake.connections[name]})
                    return self._send(404, {"detail": "not found"})
                if kind != "pools":
                    return self._send(404)
                if method == "GET" and name is None:
                    return self._send(200, {"pools": [fake._out(p) for p in fake.pools.values()],
                                            "total_entries": len(fake.pools)})
                if method == "GET":
                    if name in fake.in_use_on_get:
                        fake.in_use[name] = fake.in_use_on_get.pop(name)
                    return self._send(200, fake._out(fake.pools[name])) if name in fake.pools else self._send(404)
                if method == "POST":
                    if len(body["name"]) > 256:
                        return self._send(422, {"detail": "too long"})
                    fake.pools[body["name"]] = dict(body)
                    return self._send(201, fake._out(body))
                if method == "PATCH":
                    fake.pools[name].update(body)
                    return self._send(200, fake._out(fake.pools[name]))
                if method == "DELETE":
                    fake.pools.pop(name, None)
                    self.send_response(204)
                    self.end_headers()

            def do_GET(self):
                self._handle("GET")

            def do_POST(self):
                self._handle("POST")

            def do_PATCH(self):
                self._handle("PATCH")

            def do_DELETE(self):
                self._handle("DELETE")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def _out(self, p: dict) -> dict:
        return {**p, "description": p.get("description"), "include_deferred": p.get("include_deferred", False),
                "running_slots": self.in_use.get(p["name"], 0), "queued_slots": 0, "scheduled_slots": 0,
                "deferred_slots": 0, "occupied_slots": self.in_use.get(p["name"], 0), "open_slots": 0}

    def writes(self) -> list[tuple[str, str, dict | None]]:
        return [r for r in self.requests if r[0] != "GET"]

    def close(self):
        self.server.shutdown()
        self.server.server_close()
