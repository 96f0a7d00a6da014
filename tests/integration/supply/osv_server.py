"""An OSV-compatible service on 127.0.0.1 for the audit tests: the calls pip-audit's OSV source makes
(POST /v1/query, one package@version each; see pip_audit/_service/osv.py), POST /v1/querybatch, and
GET /v1/vulns/<id> (severity) — answered from fixture advisories. mode "garbage" answers non-JSON."""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler

from tests.loopback_http import LoopbackServer


def advisory(vid: str, package: str, version: str, fixed: str, severity: str = "HIGH") -> dict:
    return {"id": vid, "schema_version": "1.6.0", "summary": f"fixture advisory for {package}",
            "aliases": [f"CVE-2099-{abs(hash(vid)) % 10000:04d}"], "published": "2026-01-01T00:00:00Z",
            "database_specific": {"severity": severity},
            "affected": [{"package": {"name": package, "ecosystem": "PyPI"},
                          "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": fixed}]}],
                          "versions": [version]}]}


class OsvServer(LoopbackServer):
    def __init__(self, advisories: list[dict]):
        self.advisories = advisories
        self.mode = "ok"
        self.queries = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):  # quiet
                pass

            def _send(self, code: int, body: bytes, ctype: str = "application/json") -> None:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _vulns(self, q: dict) -> list[dict]:
                name, version = q.get("package", {}).get("name"), q.get("version")
                return [a for a in server.advisories for af in a["affected"]
                        if af["package"]["name"] == name and version in af.get("versions", [])]

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                server.queries += 1
                if server.mode == "garbage":
                    return self._send(200, b"<html>proxy login</html>", "text/html")
                if self.path == "/v1/query":
                    v = self._vulns(body)
                    return self._send(200, json.dumps({"vulns": v} if v else {}).encode())
                if self.path == "/v1/querybatch":
                    res = [{"vulns": [{"id": a["id"], "modified": "2026-01-01T00:00:00Z"} for a in self._vulns(q)]}
                           for q in body.get("queries", [])]
                    return self._send(200, json.dumps({"results": res}).encode())
                self._send(404, b"{}")

            def do_GET(self):
                if server.mode == "garbage":
                    return self._send(200, b"<html>proxy login</html>", "text/html")
                if self.path.startswith("/v1/vulns/"):
                    vid = self.path.rsplit("/", 1)[-1]
                    for a in server.advisories:
                        if a["id"] == vid:
                            return self._send(200, json.dumps(a).encode())
                self._send(404, b'{"code": 5, "message": "Bug not found."}')

        super().__init__(Handler)
