"""The daemonless engine, for real: buildah builds the platform image with no cache, podman runs the full image
checks on it, a build secret reaches no layer, `make verify-reproducible` rebuilds the commit and gets the
same image id, and a change of one file's mtime is named by the comparison.

One module: two uncached builds of the whole image (the second is verify-reproducible's own), so the suite
pays for them once. The build uses a CA bundle with a canary line as its secret and the rebuild the plain
one: the same image id from both also says the secret is in no layer, which the byte scan checks directly.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
import uuid
from dataclasses import replace
from pathlib import Path

import pytest

from platformctl.config import collect_overrides, load_config
from platformctl.engine import PodmanEngine
from platformctl.engine.podman import engine_env
from platformctl.host.setup import ensure_base
from platformctl.image import reproducible as rp
from platformctl.image.build import build_plan, run_image_tests
from platformctl.image.uv_image import ensure_local
from platformctl.record import BuildRecord
from tests.conftest import require
from tests.integration.helpers import working_tree_copy


SYSTEM_CA = Path("/etc/ssl/certs/ca-certificates.crt")


def _podman(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(["podman", *args], capture_output=True, text=True, env=engine_env(), **kw)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    try:
        engine = PodmanEngine.detect()
    except Exception as exc:  # ToolMissingError / EngineError: make test installs podman and buildah
        require(False, f"podman engine: {exc}")
    tmp = tmp_path_factory.mktemp("podman")
    repo = working_tree_copy(tmp / "repo")
    cfg = load_config(repo, {**collect_overrides(environ={}), "image.engine": ("podman", "test")})
    ensure_base(repo, cfg, set(), engine, print)
    canary = f"canary-{uuid.uuid4().hex}"
    secret = tmp / "ca.pem"
    secret.write_text(f"# {canary}\n{SYSTEM_CA.read_text() if SYSTEM_CA.exists() else ''}")
    spec, vinfo, _ = build_plan(repo, cfg, engine)
    if spec.build_args.get("UV_IMAGE"):
        ensure_local(repo, engine, spec.build_args["UV_IMAGE"], spec, echo=False)
    tag = f"ml-platform-podman-test:{canary[-8:]}"
    spec = replace(spec, tags=(tag,), no_cache=True, secrets={"ca_bundle": secret})
    image_id = engine.build(spec, repo / "build" / "build.log", echo=False)
    BuildRecord(image=tag, tags=[tag], image_id=image_id, revision=vinfo.revision).save(repo)
    yield {"engine": engine, "repo": repo, "cfg": cfg, "tag": tag, "id": image_id, "canary": canary, "tmp": tmp}
    _podman("rmi", "-f", tag)


def test_the_image_suite_passes_on_the_podman_image(built):
    report = run_image_tests(built["repo"], built["id"], built["engine"], full=True, cfg=built["cfg"])
    assert {r.group for r in report.runs} == {"deps", "code", "api"}
    assert all(x.ok for r in report.runs for x in r.results)


def test_labels_are_the_commits(built):
    labels = built["engine"].inspect(built["id"])["Config"]["Labels"]
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=built["repo"], capture_output=True, text=True).stdout.strip()
    assert labels["org.opencontainers.image.revision"] == head
    created = subprocess.run(["git", "log", "-1", "--format=%cI"], cwd=built["repo"], capture_output=True,
                             text=True).stdout.strip()
    assert labels["org.opencontainers.image.created"][:16] == created.replace("+00:00", "Z")[:16]


def test_build_secret_reaches_no_layer(built):
    out = built["tmp"] / "saved.tar"
    assert _podman("save", "-o", str(out), built["tag"]).returncode == 0
    found = False
    with tarfile.open(out) as outer:
        for member in outer:
            f = outer.extractfile(member) if member.isfile() else None
            if f is None:
                continue
            data = f.read()
            found |= built["canary"].encode() in data
            if member.name.endswith(".tar") or len(data) > 1_000_000:
                try:
                    with tarfile.open(fileobj=io.BytesIO(data)) as layer:
                        for m in layer:
                            lf = layer.extractfile(m) if m.isfile() else None
                            found |= bool(lf and built["canary"].encode() in lf.read())
                except tarfile.TarError:
                    pass
    history = _podman("history", "--no-trunc", built["tag"]).stdout
    assert not found and built["canary"] not in history
    assert built["canary"] not in json.dumps(built["engine"].inspect(built["id"]))


def test_verify_reproducible_rebuilds_the_same_image(built):
    p = subprocess.run([sys.executable, "build.py", "verify-reproducible"], cwd=built["repo"], capture_output=True,
                       text=True, timeout=1800, env={**os.environ, "ENGINE": "podman"})
    print(p.stdout[-3000:], p.stderr[-3000:])
    assert p.returncode == 0, p.stderr[-2000:]
    assert f"the rebuild is {built['id'][:19]}, the same image" in p.stdout


def test_a_changed_mtime_is_named(built):
    """One file of the image's topmost layer with Python files (DAGs) given another mtime (the layer rewritten
    in an OCI layout and loaded back): the comparison names that layer and that file."""
    tmp = built["tmp"]
    layout = rp.export_local(built["engine"], built["tag"], tmp / "layout")
    manifest, config = rp.read_layout(layout)

    # the topmost layer with Python files in it (the DAGs or the plugin)
    def py_member(layer: dict) -> str | None:
        with tarfile.open(rp._blob(layout, layer["digest"])) as t:
            return next((m.name for m in t if m.isfile() and m.name.endswith(".py")), None)

    at = next(i for i in range(len(manifest["layers"]) - 1, -1, -1) if py_member(manifest["layers"][i]))
    last = manifest["layers"][at]
    src = rp._blob(layout, last["digest"])
    out = io.BytesIO()
    target = None
    with tarfile.open(src) as tin, tarfile.open(fileobj=out, mode="w") as tout:
        for m in tin:
            data = tin.extractfile(m).read() if m.isfile() else None
            if target is None and m.isfile() and m.name.endswith(".py"):
                target, m.mtime = "/" + m.name.lstrip("./"), 1_700_000_000
            tout.addfile(m, io.BytesIO(data) if data is not None else None)
    assert target
    import hashlib

    body = out.getvalue()
    digest = "sha256:" + hashlib.sha256(body).hexdigest()
    rp._blob(layout, digest).write_bytes(body)
    last.update(digest=digest, size=len(body))
    config["rootfs"]["diff_ids"][at] = digest
    cfg_bytes = json.dumps(config).encode()
    cfg_digest = "sha256:" + hashlib.sha256(cfg_bytes).hexdigest()
    rp._blob(layout, cfg_digest).write_bytes(cfg_bytes)
    manifest["config"].update(digest=cfg_digest, size=len(cfg_bytes))
    m_bytes = json.dumps(manifest).encode()
    m_digest = "sha256:" + hashlib.sha256(m_bytes).hexdigest()
    rp._blob(layout, m_digest).write_bytes(m_bytes)
    index = json.loads((layout / "index.json").read_text())
    index["manifests"] = [{**index["manifests"][0], "digest": m_digest, "size": len(m_bytes)}]
    (layout / "index.json").write_text(json.dumps(index))
    touched = f"localhost/ml-platform-podman-test:touched-{uuid.uuid4().hex[:6]}"
    p = subprocess.run(["skopeo", "copy", f"oci:{layout}", f"containers-storage:{touched}"], capture_output=True,
                       text=True, env=engine_env())
    assert p.returncode == 0, p.stderr
    try:
        result = rp.compare(built["engine"], touched, built["tag"])
        assert not result.same
        assert result.first.index == at
        assert [f.path for f in result.first.files] == [target]
        err = rp.report_error(result)
        assert target in err.message and "mtime 1700000000 != " in err.message
    finally:
        _podman("rmi", "-f", touched)
