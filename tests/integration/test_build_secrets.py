"""A build secret is used during the build and found in no layer, no history entry and no config."""

from __future__ import annotations

import io
import json
import subprocess
import tarfile
import uuid
from pathlib import Path

import pytest

from platformctl.engine import BuildSpec, DockerEngine
from tests.conftest import ROOT


SYSTEM_CA = Path("/etc/ssl/certs/ca-certificates.crt")


def _all_bytes_of_image(docker: str, ref: str) -> bytes:
    """Every file of every layer, plus config and history, as one blob to search."""
    tar_bytes = subprocess.run([docker, "save", ref], capture_output=True, check=True).stdout
    blob = io.BytesIO()
    with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as outer:
        for member in outer:
            if not member.isfile():
                continue
            f = outer.extractfile(member)
            if f is None:
                continue
            data = f.read()
            blob.write(data)
            if member.name.endswith(".tar"):
                with tarfile.open(fileobj=io.BytesIO(data)) as layer:
                    for m in layer:
                        if not m.isfile():
                            continue
                        lf = layer.extractfile(m)
                        if lf is not None:
                            blob.write(lf.read())
    history = subprocess.run([docker, "history", "--no-trunc", ref], capture_output=True, check=True).stdout
    return blob.getvalue() + history


def test_ca_bundle_secret_reaches_no_layer(docker, tmp_path, uncached_build):
    canary = f"canary-{uuid.uuid4().hex}"
    # A working CA bundle (so the build can reach the index) with a unique marker line in it.
    base_ca = SYSTEM_CA.read_text() if SYSTEM_CA.exists() else ""
    secret = tmp_path / "ca.pem"
    secret.write_text(f"# {canary}\n{base_ca}")
    engine = DockerEngine.detect(docker)
    from platformctl.config import load_config
    from platformctl.image.build import build_spec

    cfg = load_config(ROOT)
    spec, _ = build_spec(ROOT, cfg, engine)
    tag = f"ml-platform-secret-test:{canary[-8:]}"
    # The whole image, without cache so every step that talks to the index (pip bootstrapping uv, uv
    # installing the locks) really runs with this secret mounted (a cached step would prove nothing).
    args = {k: v for k, v in spec.build_args.items() if k != "UV_IMAGE"}  # uv bootstrapped in this build
    args["BASE_IMAGE"] = _base_image(docker, cfg)
    args["PY_TAG"] = _py_tag(docker, args["BASE_IMAGE"])
    s = BuildSpec(context=ROOT, dockerfile=ROOT / "Dockerfile", tags=(tag,), build_args=args,
                  secrets={"ca_bundle": secret}, target="platform")
    p = uncached_build(engine, s, tmp_path)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    try:
        blob = _all_bytes_of_image(docker, tag)
        assert len(blob) > 300_000_000  # we really read the layers, Airflow's included
        assert canary.encode() not in blob
        inspect = subprocess.run([docker, "image", "inspect", tag], capture_output=True, text=True, check=True).stdout
        assert canary not in inspect
        env = json.dumps(json.loads(inspect)[0]["Config"].get("Env") or [])
        assert "PIP_CERT=/run/secrets" not in env and "SSL_CERT_FILE=/run/secrets" not in env
    finally:
        subprocess.run([docker, "rmi", "-f", tag], capture_output=True)


def _base_image(docker: str, cfg) -> str:
    """The configured base (make build made one locally when none could be pulled)."""
    for cand in (cfg.image.resolved_base_image(cfg.airflow_version),):
        if cand and subprocess.run([docker, "image", "inspect", cand], capture_output=True).returncode == 0:
            return cand
    pytest.fail("no base image available: run scripts/make-base-image.sh")


def _py_tag(docker: str, base: str) -> str:
    out = subprocess.run([docker, "run", "--rm", "--entrypoint", "python3", base, "-c",
                          "import sys; print('%d%d' % sys.version_info[:2])"], capture_output=True, text=True, check=True)
    return out.stdout.strip()
