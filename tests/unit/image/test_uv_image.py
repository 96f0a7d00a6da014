from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from platformctl.config import collect_overrides, load_config
from platformctl.errors import LockInputError
from platformctl.image.build import build_spec
from platformctl.engine import DockerEngine
from platformctl.image.uv_image import local_tag, uv_image_ref, uv_pin

ROOT = Path(__file__).resolve().parents[3]


def _cfg(repo, **env):
    return load_config(repo, collect_overrides([], {"PYTHON": "3.11", **env}))


def test_pin_comes_from_the_tools_lock(repo):
    text = (repo / "requirements/tools-py311.txt").read_text()
    pinned = next(ln.split("==")[1].split()[0] for ln in text.splitlines() if ln.startswith("uv=="))
    assert uv_pin(repo, _cfg(repo)) == pinned


def test_missing_pin_is_a_lock_error(repo):
    lock = repo / "requirements/tools-py311.txt"
    lock.write_text("\n".join(ln for ln in lock.read_text().splitlines() if not ln.startswith(("uv==", "    --hash"))))
    with pytest.raises(LockInputError) as exc:
        uv_pin(repo, _cfg(repo))
    assert "tools-py311.txt" in exc.value.message and "make lock" in exc.value.hint


def test_local_tag_moves_with_the_tools_lock_and_the_base(repo):
    cfg = _cfg(repo)
    tag = local_tag(repo, cfg, "sha256:base1")
    assert tag.startswith(f"ml-platform-uv:{uv_pin(repo, cfg)}-")
    assert local_tag(repo, cfg, "sha256:base1") == tag
    assert local_tag(repo, cfg, "sha256:base2") != tag  # another base: another wheel platform maybe
    lock = repo / "requirements/tools-py311.txt"
    lock.write_text(lock.read_text().replace("--hash=sha256:", "--hash=sha256:0", 1))
    assert local_tag(repo, cfg, "sha256:base1") != tag


def test_configured_uv_image_wins_and_no_base_means_bootstrap_in_the_build(repo):
    assert uv_image_ref(repo, _cfg(repo, UV_IMAGE="mirror.example/astral-sh/uv:0.13.9"), "sha256:b") \
        == "mirror.example/astral-sh/uv:0.13.9"
    assert uv_image_ref(repo, _cfg(repo), None) is None
    spec, _ = build_spec(repo, _cfg(repo), DockerEngine("docker", "docker-buildkit"), None)
    assert "UV_IMAGE" not in spec.build_args and spec.build_args["UV_VERSION"] == uv_pin(repo, _cfg(repo))
    spec, _ = build_spec(repo, _cfg(repo), DockerEngine("docker", "docker-buildkit"), "sha256:b")
    assert spec.build_args["UV_IMAGE"] == local_tag(repo, _cfg(repo), "sha256:b")


def test_operators_build_backend_is_the_pinned_uv():
    """The image installs operators offline with uv's own uv_build backend: that only works while the
    backend's version range admits the uv the tools lock pins (else uv would download uv_build)."""
    req = Requirement(tomllib.loads((ROOT / "operators/pyproject.toml").read_text())["build-system"]["requires"][0])
    assert req.name == "uv-build" or req.name == "uv_build"
    pins = {uv_pin(ROOT, load_config(ROOT, collect_overrides([], {"PYTHON": py}))) for py in ("3.11", "3.12")}
    for pin in pins:
        assert req.specifier.contains(pin), f"operators/pyproject.toml requires {req}, the tools lock pins uv {pin}"
