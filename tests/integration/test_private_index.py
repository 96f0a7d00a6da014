"""The build secrets against a real private index, served by this test on the Docker bridge the way
PyPI is laid out: an index host (HTTPS with a private CA, HTTP basic auth) whose pages link to a file
host (HTTPS with a certificate the base image's own trust store accepts: a "public" CA added to a
derived base image). pip (the uv bootstrap, target uv-image) and uv (the team lock, stage team-python)
install through both with ca_bundle = the private CA alone, so its certificates must be trusted in
addition to the base's, and index_url = the index URL with credentials, which reach the index and no
layer, history entry or config of what was built. Without them the index answers 401 and the build fails.
"""

from __future__ import annotations

import base64
import hashlib
import html
import http.server
import json
import ssl
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import pytest

from platformctl.config import collect_overrides, load_config
from platformctl.image.build import build_spec
from platformctl.engine import BuildSpec, DockerEngine
from platformctl.image.uv_image import uv_pin
from platformctl.lock.core import lock_filename
from platformctl.lock.files import read_pins
from tests.integration.helpers import build_from
from tests.integration.test_build_secrets import _all_bytes_of_image

USER = "ci-reader"


class Host:
    """An HTTPS server for a directory that remembers every request; with a password, basic auth."""

    def __init__(self, root: Path, host: str, certfile: Path, keyfile: Path, password: str | None = None):
        self.root = root
        self.expected = "Basic " + base64.b64encode(f"{USER}:{password}".encode()).decode() if password else None
        self.requests: list[tuple[str, bool]] = []
        served = self
        root.mkdir(parents=True, exist_ok=True)

        class Handler(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *a, **kw):
                super().__init__(*a, directory=str(root), **kw)

            def do_GET(self):
                ok = served.expected is None or self.headers.get("Authorization") == served.expected
                served.requests.append((self.path, ok))
                if not ok:
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", 'Basic realm="private index"')
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                super().do_GET()

            def log_message(self, *a):
                pass

        self.server = http.server.ThreadingHTTPServer((host, 0), Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(certfile, keyfile)
        self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.url = f"https://{host}:{self.server.server_address[1]}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def served(self, prefix: str) -> bool:
        return any(path.startswith(prefix) and ok for path, ok in self.requests)


class PrivateIndex:
    """A PEP 503 simple index on `index` whose links point at wheels on `files`."""

    def __init__(self, index: Host, files: Host):
        self.index, self.files = index, files
        self.url = index.url + "simple/"

    def add(self, wheel: Path) -> str:
        """Publish a wheel; returns its sha256."""
        name = wheel.name.split("-")[0].lower().replace("_", "-")
        (self.files.root / "files").mkdir(exist_ok=True)
        (self.files.root / "files" / wheel.name).write_bytes(wheel.read_bytes())
        digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
        page = self.index.root / "simple" / name / "index.html"
        page.parent.mkdir(parents=True, exist_ok=True)
        page.write_text(f'<html><body><a href="{self.files.url}files/{html.escape(wheel.name)}#sha256={digest}">'
                        f"{html.escape(wheel.name)}</a></body></html>\n")
        return digest


def _bridge_gateway(docker: str) -> str:
    """The host's address on Docker's bridge: what a build step's container reaches the host by."""
    p = subprocess.run([docker, "network", "inspect", "bridge", "--format", "{{(index .IPAM.Config 0).Gateway}}"],
                       capture_output=True, text=True)
    return p.stdout.strip() or "172.17.0.1"


def _certificates(tmp: Path, ip: str, name: str) -> tuple[Path, Path, Path]:
    """A CA and a server certificate it signed for `ip`."""
    tmp.mkdir(parents=True, exist_ok=True)
    ca_key, ca, key, csr, cert = (tmp / n for n in ("ca.key", "ca.pem", "srv.key", "srv.csr", "srv.pem"))
    run = lambda *a: subprocess.run(["openssl", *a], check=True, capture_output=True)
    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(ca_key), "-out", str(ca), "-days", "1",
        "-subj", f"/CN=ml-platform test {name} CA")
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr), "-subj", f"/CN={ip}")
    ext = tmp / "srv.ext"
    ext.write_text(f"subjectAltName=IP:{ip}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n")
    run("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key), "-CAcreateserial",
        "-out", str(cert), "-days", "1", "-extfile", str(ext))
    return ca, cert, key


def _download(tmp: Path, python: str, *reqs: str) -> dict[str, Path]:
    """Wheels for the image's platform, from the public index (the host's pip)."""
    dest = tmp / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
                    "--platform", "manylinux_2_17_x86_64", "--python-version", python, "-d", str(dest), *reqs],
                   check=True, capture_output=True)
    return {w.name.split("-")[0].lower(): w for w in dest.glob("*.whl")}


@pytest.fixture
def index(docker, tmp_path):
    password = f"pw-{uuid.uuid4().hex}"
    host = _bridge_gateway(docker)
    private_ca, cert, key = _certificates(tmp_path / "private", host, "private index")
    public_ca, fcert, fkey = _certificates(tmp_path / "public", host, "public")
    idx = PrivateIndex(Host(tmp_path / "index", host, cert, key, password), Host(tmp_path / "files", host, fcert, fkey))
    idx.password, idx.private_ca, idx.public_ca = password, private_ca, public_ca
    yield idx
    idx.index.server.shutdown()
    idx.files.server.shutdown()


def _base_trusting(docker: str, base: str, ca: Path, tmp: Path) -> str:
    """`base` with `ca` added to its own trust store, as a public CA would be."""
    return build_from(docker, tmp / "base-ctx", f"FROM {base}\nCOPY public-ca.pem /tmp/public-ca.pem\n"
                      "RUN cat /tmp/public-ca.pem >> /etc/ssl/certs/ca-certificates.crt && rm /tmp/public-ca.pem\n",
                      f"ml-platform-index-test/base:{uuid.uuid4().hex[:8]}", {"public-ca.pem": ca.read_bytes()})


def test_pip_and_uv_install_through_a_private_index_with_the_secrets(docker, image, index, project_copy, tmp_path, uncached_build):
    root = project_copy
    cfg = load_config(root, collect_overrides([]))
    engine = DockerEngine.detect(docker)
    base = _base_trusting(docker, cfg.image.resolved_base_image(cfg.airflow_version), index.public_ca, tmp_path)
    tags = [base]
    try:
        # the team lock's own packages (those the Airflow lock does not pin) come from this index too, each the
        # file its lock hash names (the public index's wheel)
        team_only = {n: v for n, v in read_pins((root / "requirements" / lock_filename("team", cfg.image.python))
                                                .read_text()).items()
                     if n not in read_pins((root / "requirements" / lock_filename("airflow", cfg.image.python))
                                           .read_text())}
        wheels = _download(tmp_path, cfg.image.python, f"uv=={uv_pin(root, cfg)}", "tqdm",
                           *(f"{n}=={v}" for n, v in team_only.items()))
        index.add(wheels["uv"])
        for name in team_only:
            index.add(wheels[name.replace("-", "_").lower()] if name.replace("-", "_").lower() in wheels
                      else wheels[name.lower()])
        tqdm_sha = index.add(wheels["tqdm"])
        tqdm_version = wheels["tqdm"].name.split("-")[1]
        # The team lock gains tqdm, with the hash of the file the private index serves (the lock's header
        # is not refreshed: this test builds with the engine directly, past make build's lock-check).
        team = root / "requirements" / lock_filename("team", cfg.image.python)
        team.write_text(team.read_text() + f"tqdm=={tqdm_version} \\\n    --hash=sha256:{tqdm_sha}\n")

        url_file = tmp_path / "index-url"
        url_file.write_text(index.url.replace("https://", f"https://{USER}:{index.password}@") + "\n")
        secrets = {"ca_bundle": index.private_ca, "index_url": url_file}
        spec, _ = build_spec(root, cfg, engine, engine.image_id(base))
        args = {**spec.build_args, "BASE_IMAGE": base}

        # pip: the uv bootstrap (target uv-image) fetches the pinned uv wheel; the result is the uv image
        # the next build mounts
        uv_tag = args["UV_IMAGE"]
        p = uncached_build(engine, BuildSpec(context=root, dockerfile=root / "Dockerfile", tags=(uv_tag,), secrets=secrets,
                                     build_args={k: args[k] for k in ("BASE_IMAGE", "PY_TAG")}, target="uv-image"), tmp_path)
        tags.append(uv_tag)
        assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
        assert f"uv {uv_pin(root, cfg)}" in p.stdout + p.stderr
        assert index.index.served("/simple/uv/") and index.files.served(f"/files/{wheels['uv'].name}")

        # uv: the team lock's own packages (stage team-python)
        team_tag = f"ml-platform-index-test/team:{uuid.uuid4().hex[:8]}"
        team_spec = BuildSpec(context=root, dockerfile=root / "Dockerfile", tags=(team_tag,), secrets=secrets,
                              build_args=args, target="team-python")
        p = uncached_build(engine, team_spec, tmp_path)
        tags.append(team_tag)
        assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
        assert index.index.served("/simple/tqdm/") and index.files.served(f"/files/{wheels['tqdm'].name}")
        out = subprocess.run([docker, "run", "--rm", team_tag, "/opt/venv/bin/python", "-c",
                              "import tqdm; print(tqdm.__version__)"], capture_output=True, text=True)
        assert out.stdout.strip() == tqdm_version, out.stderr
        assert index.password not in p.stdout + p.stderr

        for tag in (uv_tag, team_tag):
            blob = _all_bytes_of_image(docker, tag)
            assert index.password.encode() not in blob, f"the index password is in {tag}"
            config = json.loads(subprocess.run([docker, "image", "inspect", tag], capture_output=True,
                                               text=True, check=True).stdout)[0]["Config"]
            assert index.password not in json.dumps(config)

        # the same build with the user but no password: the index refuses it and so does the build
        url_file.write_text(index.url.replace("https://", f"https://{USER}@") + "\n")
        denied_before = sum(1 for _, ok in index.index.requests if not ok)
        p = uncached_build(engine, team_spec, tmp_path)
        assert p.returncode != 0
        assert "401" in p.stdout + p.stderr
        assert sum(1 for _, ok in index.index.requests if not ok) > denied_before
    finally:
        subprocess.run([docker, "rmi", "-f", *tags], capture_output=True)
