"""The uv tools image: made from the tools lock once, then reused; a configured one must be the pinned uv."""

from __future__ import annotations

import subprocess
import uuid

import pytest

from platformctl.config import collect_overrides, load_config
from platformctl.errors import BuildError
from platformctl.image.build import build_plan, build_spec
from platformctl.engine import BuildSpec, DockerEngine
from platformctl.image.uv_image import LOCAL_NAME, ensure_local, uv_pin
from tests.conftest import ROOT


def _cfg():
    return load_config(ROOT, collect_overrides())


def test_local_uv_image_is_made_once_and_holds_the_pinned_uv(docker, image, tmp_path):
    engine = DockerEngine.detect(docker)
    cfg = _cfg()
    spec, _, _ = build_plan(ROOT, cfg, engine)
    assert "UV_IMAGE" in spec.build_args, "the base image is local, so the build mounts uv from the tools image"
    ref = f"{LOCAL_NAME}:test-{uuid.uuid4().hex[:8]}"
    try:
        assert ensure_local(ROOT, engine, ref, spec, echo=False) is True
        assert ensure_local(ROOT, engine, ref, spec, echo=False) is False  # kept: not made again
        # scratch image with the binary at /uv, like ghcr.io/astral-sh/uv; run it on the base to ask its version
        base = spec.build_args["BASE_IMAGE"]
        cid = subprocess.run([docker, "create", ref, "/uv"], capture_output=True, text=True, check=True).stdout.strip()
        try:
            subprocess.run([docker, "cp", f"{cid}:/uv", str(tmp_path / "uv")], check=True, capture_output=True)
        finally:
            subprocess.run([docker, "rm", cid], capture_output=True)
        out = subprocess.run([docker, "run", "--rm", "-v", f"{tmp_path / 'uv'}:/uv:ro", "--entrypoint", "/uv", base,
                              "--version"], capture_output=True, text=True, check=True).stdout
        assert out.split()[:2] == ["uv", uv_pin(ROOT, cfg)]
        layers = subprocess.run([docker, "image", "inspect", ref, "--format", "{{len .RootFS.Layers}}"],
                                capture_output=True, text=True, check=True).stdout.strip()
        assert layers == "1"
    finally:
        subprocess.run([docker, "rmi", "-f", ref], capture_output=True)


def test_a_uv_image_with_another_uv_fails_the_build_naming_both_versions(docker, image, tmp_path):
    """image.uv_image pointing at another uv release: the first install step stops with both versions."""
    engine = DockerEngine.detect(docker)
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    fake = ctx / "uv"
    fake.write_text("#!/bin/sh\necho 'uv 0.0.1'\n")
    fake.chmod(0o755)
    (ctx / "Dockerfile").write_text("FROM scratch\nCOPY uv /uv\n")
    ref = f"test/fake-uv:{uuid.uuid4().hex[:8]}"
    engine.build(BuildSpec(context=ctx, dockerfile=ctx / "Dockerfile", tags=(ref,)), tmp_path / "fake.log", echo=False)
    cfg = load_config(ROOT, collect_overrides([f"image.uv_image={ref}"]))
    spec, _ = build_spec(ROOT, cfg, engine, engine.image_id(cfg.image.resolved_base_image(cfg.airflow_version)))
    assert spec.build_args["UV_IMAGE"] == ref
    spec = spec.__class__(**{**spec.__dict__, "tags": ("ml-platform-uv-mismatch:1",), "target": "python-deps"})
    try:
        with pytest.raises(BuildError) as exc:
            engine.build(spec, tmp_path / "build.log", echo=False)
    finally:
        subprocess.run([docker, "rmi", "-f", ref], capture_output=True)
    text = exc.value.message + exc.value.hint
    assert "uv 0.0.1" in text and f"pins {uv_pin(ROOT, cfg)}" in text and "image.uv_image" in text
