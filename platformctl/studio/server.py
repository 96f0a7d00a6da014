"""The studio's local web server: stdlib http.server, one process, 127.0.0.1 only.

Security (the studio writes files in a git checkout, so a web page must not be able to drive it):
- a per-start random token: the URL printed at start carries it once; the page is then served with an
  HttpOnly SameSite=Strict cookie and every API call also sends it in the X-Studio-Token header;
- Host must be 127.0.0.1:<port> or localhost:<port> (DNS rebinding) and Origin, when sent, the same;
- API calls are POST with a JSON body of at most MAX_BODY bytes (a cross-site form cannot send JSON
  with a custom header without a CORS preflight, which is never answered);
- file names are `pipelines/<name>.yaml` only, resolved inside pipelines/ (no .., no symlinks out);
  writes go to a temporary file in pipelines/ and are renamed into place.
"""

from __future__ import annotations

import hmac
import json
import re
import secrets
import threading
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

from ..errors import PlatformError
from ..pipelines.loader import MAX_BYTES
from .protocol import ApiError

if TYPE_CHECKING:
    from .api import Studio

MAX_BODY = MAX_BYTES + 64 * 1024  # a whole pipeline text (set_text) plus its JSON envelope
STATIC = Path(__file__).resolve().parent / "static"
_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
          ".css": "text/css; charset=utf-8", ".json": "application/json"}


class StudioLoader:
    """The Studio (api.py), made in a background thread: the URL is printed and the page and its scripts
    are served while the validator's models and ruamel.yaml are imported; API calls wait for it."""

    def __init__(self, root: Path):
        self.done = threading.Event()
        self._studio: Studio | None = None
        self.error: BaseException | None = None
        threading.Thread(target=self._make, args=(root,), name="studio-load", daemon=True).start()

    def _make(self, root: Path) -> None:
        try:
            from .api import Studio

            self._studio = Studio(root)
        except BaseException as exc:  # noqa: BLE001 - handed to the thread that serves (get, serve)
            self.error = exc
        finally:
            self.done.set()

    def get(self) -> Studio:
        self.done.wait()
        if self.error is not None:
            raise self.error
        assert self._studio is not None
        return self._studio


class Handler(BaseHTTPRequestHandler):
    server_version = "ml-platform-studio"
    loader: StudioLoader
    token: str
    port: int
    quiet = True

    def log_message(self, fmt, *args):  # noqa: D102 - the CLI prints its own one-liners
        if not self.quiet:
            super().log_message(fmt, *args)

    # -- checks -------------------------------------------------------------------------------------
    def _allowed_hosts(self) -> set[str]:
        return {f"127.0.0.1:{self.port}", f"localhost:{self.port}"}

    def _check_host_origin(self) -> None:
        host = self.headers.get("Host", "")
        if host not in self._allowed_hosts():
            raise ApiError(403, f"Host '{host}' is not this studio (use http://127.0.0.1:{self.port}/)")
        origin = self.headers.get("Origin")
        if origin is not None and origin not in {f"http://{h}" for h in self._allowed_hosts()}:
            raise ApiError(403, f"Origin '{origin}' may not use the studio")

    def _cookie_token(self) -> str | None:
        c = SimpleCookie()
        try:
            c.load(self.headers.get("Cookie", ""))
        except Exception:
            return None
        m = c.get(f"studio_token_{self.port}")
        return m.value if m else None

    def _has_token(self, *candidates) -> bool:
        return any(isinstance(t, str) and hmac.compare_digest(t.encode(), self.token.encode()) for t in candidates)

    # -- responses ----------------------------------------------------------------------------------
    def _send(self, status: int, body: bytes, ctype: str, extra: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("X-Frame-Options", "DENY")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("Content-Security-Policy", "default-src 'self'; style-src 'self' 'unsafe-inline'; "
                                                    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'")
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, data: dict) -> None:
        self._send(status, json.dumps(data, default=str).encode(), "application/json")

    def _error(self, exc: ApiError) -> None:
        self._json(exc.status, {"error": str(exc), **exc.extra})

    # -- methods ------------------------------------------------------------------------------------
    def do_GET(self):  # noqa: N802
        try:
            self._check_host_origin()
            url = urlsplit(self.path)
            query = parse_qs(url.query)
            if url.path == "/":
                given = (query.get("token") or [None])[0]
                if not self._has_token(given, self._cookie_token()):
                    raise ApiError(401, "this studio needs the token: open the URL `make studio` printed")
                body = (STATIC / "index.html").read_bytes()
                cookie = f"studio_token_{self.port}={self.token}; HttpOnly; SameSite=Strict; Path=/"
                self._send(200, body, _TYPES[".html"], {"Set-Cookie": cookie})
                return
            if url.path.startswith("/static/"):
                if not self._has_token(self._cookie_token(), (query.get("token") or [None])[0]):
                    raise ApiError(401, "missing token")
                name = url.path[len("/static/"):]
                path = (STATIC / name).resolve()
                if not re.match(r"^[A-Za-z0-9_.-]+$", name) or path.parent != STATIC.resolve() or not path.is_file():
                    raise ApiError(404, "not found")
                self._send(200, path.read_bytes(), _TYPES.get(path.suffix, "application/octet-stream"))
                return
            raise ApiError(404, "not found")
        except ApiError as exc:
            self._error(exc)

    do_HEAD = do_GET

    def do_POST(self):  # noqa: N802
        try:
            self._check_host_origin()
            if not self._has_token(self.headers.get("X-Studio-Token")):
                raise ApiError(401, "missing or wrong X-Studio-Token")
            url = urlsplit(self.path)
            m = re.match(r"^/api/([a-z-]+)$", url.path)
            if not m or not hasattr(self.loader.get(), "api_" + m.group(1).replace("-", "_")):
                raise ApiError(404, f"no API {url.path}")
            length = self.headers.get("Content-Length")
            if length is None or not length.isdigit():
                raise ApiError(411, "Content-Length is required")
            if int(length) > MAX_BODY:
                raise ApiError(413, f"body of {length} bytes is over the limit of {MAX_BODY}")
            if (self.headers.get("Content-Type") or "").split(";")[0].strip() != "application/json":
                raise ApiError(415, "send application/json")
            raw = self.rfile.read(int(length))
            try:
                body = json.loads(raw or b"{}")
            except ValueError:
                raise ApiError(400, "the body is not JSON") from None
            if not isinstance(body, dict):
                raise ApiError(400, "the body must be a JSON object")
            try:
                self._json(200, self.loader.get().api(m.group(1), body))
            except PlatformError as exc:
                raise ApiError(500, str(exc)) from None
        except ApiError as exc:
            self.close_connection = True  # an unread body must not be parsed as the next request
            self._error(exc)

    def do_PUT(self):  # noqa: N802
        self._error(ApiError(405, "the studio API is POST only"))

    do_DELETE = do_PATCH = do_PUT


def make_server(root: Path, port: int = 0, token: str | None = None, *, wait: bool = True
                ) -> tuple[ThreadingHTTPServer, str]:
    """A bound, not yet serving studio server on 127.0.0.1 and its URL (with the token). wait: the Studio
    is made (and a bad catalog raised) before this returns; else it is made while the server starts."""
    loader = StudioLoader(root)
    if wait:
        loader.get()
    token = token or secrets.token_urlsafe(24)
    httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    httpd.daemon_threads = True
    bound = httpd.server_address[1]
    handler = type("StudioHandler", (Handler,), {"loader": loader, "token": token, "port": bound})
    httpd.RequestHandlerClass = handler
    httpd.loader = loader  # type: ignore[attr-defined]
    return httpd, f"http://127.0.0.1:{bound}/?token={token}"


def serve(root: Path, port: int = 0, on_ready=print) -> None:
    """Serve until Ctrl-C. The URL comes first; a project the studio cannot load (a broken flavors.yaml,
    ...) stops the server and raises its error, one line at the CLI."""
    httpd, url = make_server(root, port, wait=False)
    loader = httpd.loader  # type: ignore[attr-defined]
    on_ready(url)

    def stop_on_error() -> None:
        loader.done.wait()
        if loader.error is not None:
            httpd.shutdown()

    threading.Thread(target=stop_on_error, name="studio-watch", daemon=True).start()
    try:
        httpd.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        httpd.server_close()
    if loader.error is not None:
        raise loader.error


__all__ = ["MAX_BODY", "StudioLoader", "make_server", "serve"]
