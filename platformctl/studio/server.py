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
import os
import re
import secrets
import threading
from http import HTTPStatus
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from ..errors import PlatformError
from ..pipelines.loader import MAX_BYTES
from .document import NEW_PIPELINE, Document, EditError, sha256
from .workspace import analyze, describe_schedule, list_pipelines, load_catalog, preview

MAX_BODY = MAX_BYTES + 64 * 1024  # a whole pipeline text (set_text) plus its JSON envelope
STATIC = Path(__file__).resolve().parent / "static"
_FILE = re.compile(r"^pipelines/([A-Za-z0-9_][A-Za-z0-9_.-]{0,120})\.ya?ml$")
_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
          ".css": "text/css; charset=utf-8", ".json": "application/json"}


class ApiError(Exception):
    def __init__(self, status: int, message: str, **extra):
        super().__init__(message)
        self.status = status
        self.extra = extra


class Studio:
    """The studio's state: the project root, the catalog, and the documents being edited."""

    def __init__(self, root: Path):
        self.root = root.resolve()
        self.pipelines = self.root / "pipelines"
        self.catalog = load_catalog(self.root)
        self.docs: dict[str, Document] = {}
        self.lock = threading.Lock()

    # -- files --------------------------------------------------------------------------------------
    def path_of(self, file) -> Path:
        if not isinstance(file, str) or not _FILE.match(file):
            raise ApiError(400, f"{file!r} is not a pipeline file name (pipelines/<name>.yaml)")
        path = self.root / file
        if path.is_symlink() or path.resolve().parent != self.pipelines.resolve():
            raise ApiError(403, f"{file} is not inside pipelines/")
        return path

    def _read(self, path: Path) -> str | None:
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return None
        if len(raw) > MAX_BYTES:
            raise ApiError(413, f"{path.name} is {len(raw)} bytes; pipelines are limited to {MAX_BYTES} bytes")
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ApiError(422, f"{path.name} is not UTF-8 text") from None

    def doc(self, file, *, load: bool = True) -> Document:
        path = self.path_of(file)
        if file not in self.docs:
            text = self._read(path) if load else None
            if text is None:
                raise ApiError(404, f"{file} does not exist (create it with New pipeline)")
            self.docs[file] = Document(file, text, sha256(text))
        return self.docs[file]

    def state(self, doc: Document) -> dict:
        out = analyze(self.root, self.catalog, doc.file, doc.text)
        on_disk = self._read(self.root / doc.file)
        conflict = (on_disk is not None and doc.base_sha is not None and sha256(on_disk) != doc.base_sha) or \
                   (on_disk is not None and doc.base_sha is None)
        out.update(file=doc.file, text=doc.text, dirty=doc.dirty, base_sha=doc.base_sha, conflict=conflict,
                   can_undo=bool(doc.undo_stack), can_redo=bool(doc.redo_stack), new=doc.base_sha is None,
                   schedule_words=describe_schedule((out["dag"] or {}).get("schedule")))
        return out

    # -- API ----------------------------------------------------------------------------------------
    def api(self, name: str, body: dict) -> dict:
        with self.lock:
            return getattr(self, "api_" + name.replace("-", "_"))(body)

    def api_pipelines(self, body) -> dict:
        files = list_pipelines(self.root)
        for f in files:
            d = self.docs.get(f["file"])
            f["dirty"] = bool(d and d.dirty)
        files += [{"file": f, "dag": None, "jobs": 0, "dirty": True} for f, d in self.docs.items()
                  if d.base_sha is None and not (self.root / f).exists()]
        return {"pipelines": files}

    def api_catalog(self, body) -> dict:
        from ..pipelines.model import PRESETS, TRIGGER_RULES

        c = self.catalog
        return {"flavors": c.flavors, "environments": c.environments, "schema": c.schema,
                "trigger_rules": list(TRIGGER_RULES), "presets": list(PRESETS)}

    def api_open(self, body) -> dict:
        return self.state(self.doc(body.get("file")))

    def api_new(self, body) -> dict:
        name = body.get("name")
        file = f"pipelines/{name}.yaml"
        path = self.path_of(file)
        if path.exists() or file in self.docs:
            raise ApiError(409, f"{file} already exists: open it instead")
        if not isinstance(name, str) or not re.match(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$", name):
            raise ApiError(400, f"{name!r} is not a valid DAG name")
        self.docs[file] = Document(file, NEW_PIPELINE.format(name=name), None)
        return self.state(self.docs[file])

    def api_edit(self, body) -> dict:
        doc = self.doc(body.get("file"))
        ops = body.get("ops") if "ops" in body else [body.get("op")]
        if not isinstance(ops, list) or not ops:
            raise ApiError(400, "edit needs op or a non-empty ops list")
        before = (doc.text, list(doc.undo_stack), list(doc.redo_stack))
        try:
            for op in ops:
                doc.apply(op)
        except EditError as exc:
            doc.text, doc.undo_stack, doc.redo_stack = before
            raise ApiError(422, str(exc)) from None
        if len(ops) > 1 and doc.text != before[0]:  # one user action, one undo step
            doc.undo_stack[len(before[1]):] = [before[0]]
        return self.state(doc)

    def api_undo(self, body) -> dict:
        doc = self.doc(body.get("file"))
        try:
            doc.undo()
        except EditError as exc:
            raise ApiError(409, str(exc)) from None
        return self.state(doc)

    def api_redo(self, body) -> dict:
        doc = self.doc(body.get("file"))
        try:
            doc.redo()
        except EditError as exc:
            raise ApiError(409, str(exc)) from None
        return self.state(doc)

    def api_preview(self, body) -> dict:
        doc = self.doc(body.get("file"))
        return preview(self.root, self.catalog, doc.file, doc.text)

    def api_reload(self, body) -> dict:
        """Drop the edits and read the file as it is on disk now (the way out of a conflict)."""
        file = body.get("file")
        self.path_of(file)
        self.docs.pop(file, None)
        return self.state(self.doc(file))

    def api_save(self, body) -> dict:
        doc = self.doc(body.get("file"))
        draft = body.get("draft") is True
        path = self.path_of(doc.file)
        on_disk = self._read(path)
        if on_disk is not None and (doc.base_sha is None or sha256(on_disk) != doc.base_sha):
            raise ApiError(409, f"{doc.file} changed on disk since it was opened: nothing was written "
                                "(reload it to take the file as it is, or copy your text out first)",
                           conflict=True, disk_text=on_disk)
        if on_disk is None and doc.base_sha is not None:
            raise ApiError(409, f"{doc.file} was deleted on disk since it was opened: nothing was written",
                           conflict=True, disk_text=None)
        result = analyze(self.root, self.catalog, doc.file, doc.text)
        if not result["valid"] and not draft:
            first = result["problems"][0]["text"] if result["problems"] else "invalid"
            raise ApiError(422, f"not saved: {len(result['problems'])} problem(s), first: {first} "
                                "(fix them, or Save draft to write it anyway)", problems=result["problems"])
        tmp = path.with_name(f".{path.name}.studio-{os.getpid()}.tmp")
        with open(tmp, "x", encoding="utf-8", newline="") as f:
            f.write(doc.text)
        if on_disk is None:
            try:
                os.link(tmp, path)  # create, never replace: a file that appeared meanwhile is kept
            except FileExistsError:
                raise ApiError(409, f"{doc.file} appeared on disk meanwhile: nothing was written",
                               conflict=True) from None
            finally:
                tmp.unlink()
        else:
            os.replace(tmp, path)
        doc.base_sha = sha256(doc.text)
        out = self.state(doc)
        out["saved"] = "draft" if not result["valid"] else "valid"
        return out


class Handler(BaseHTTPRequestHandler):
    server_version = "ml-platform-studio"
    studio: Studio
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
            if not m or not hasattr(Studio, "api_" + m.group(1).replace("-", "_")):
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
                self._json(200, self.studio.api(m.group(1), body))
            except PlatformError as exc:
                raise ApiError(500, str(exc)) from None
        except ApiError as exc:
            self.close_connection = True  # an unread body must not be parsed as the next request
            self._error(exc)

    def do_PUT(self):  # noqa: N802
        self._error(ApiError(405, "the studio API is POST only"))

    do_DELETE = do_PATCH = do_PUT


def make_server(root: Path, port: int = 0, token: str | None = None) -> tuple[ThreadingHTTPServer, str]:
    """A bound, not yet serving studio server on 127.0.0.1 and its URL (with the token)."""
    studio = Studio(root)
    token = token or secrets.token_urlsafe(24)
    httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    httpd.daemon_threads = True
    bound = httpd.server_address[1]
    handler = type("StudioHandler", (Handler,), {"studio": studio, "token": token, "port": bound})
    httpd.RequestHandlerClass = handler
    return httpd, f"http://127.0.0.1:{bound}/?token={token}"


def serve(root: Path, port: int = 0, on_ready=print) -> None:
    httpd, url = make_server(root, port)
    on_ready(url)
    try:
        httpd.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        httpd.server_close()


__all__ = ["MAX_BODY", "Studio", "make_server", "serve"]
