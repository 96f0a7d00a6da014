"""Engine errors with the real Docker CLI: the cause and the fix, not the CLI's template noise; images the
engine cannot fetch (base, uv) named with the setting and the way out."""

from __future__ import annotations


import pytest

from platformctl.config import collect_overrides, load_config
from platformctl.errors import BuildError, EngineError, ToolMissingError
from platformctl.services.build import build_image
from platformctl.engine import DockerEngine
from tests.integration.helpers import working_tree_copy


def test_unreachable_engine_names_the_cause_and_docker_host(docker, monkeypatch, tmp_path):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/nowhere.sock")
    with pytest.raises(EngineError) as exc:
        DockerEngine.detect(docker)
    assert "Cannot connect to the Docker daemon" in exc.value.message and "template" not in exc.value.message
    assert "DOCKER_HOST" in exc.value.hint


def test_a_configured_cli_that_does_not_exist_is_named():
    with pytest.raises(ToolMissingError) as exc:
        DockerEngine.detect("/nonexistent/docker")
    assert "/nonexistent/docker" in exc.value.message and "DOCKER=" in exc.value.hint


@pytest.mark.parametrize("setting, ref, message, hint_parts", [
    # what a plain `make build` hits where Docker Hub is unreachable: the setting and the way out
    ("image.base_image", "nonexistent.invalid/python:3.11-slim-bookworm",
     "base image nonexistent.invalid/python:3.11-slim-bookworm (image.base_image", ["scripts/make-base-image.sh"]),
    ("image.uv_image", "nonexistent.invalid/astral-sh/uv:0.0.1",
     "image.uv_image nonexistent.invalid/astral-sh/uv:0.0.1 cannot be fetched", ["UV_IMAGE", "unset it"]),
])
def test_an_image_the_engine_cannot_fetch_is_named_with_the_fix(docker, tmp_path, setting, ref, message, hint_parts):
    repo = working_tree_copy(tmp_path / "repo")
    cfg = load_config(repo, collect_overrides([f"{setting}={ref}"]))
    with pytest.raises(BuildError) as exc:
        build_image(repo, cfg, run_tests=False, echo=False, reuse=False)
    assert exc.value.message.startswith(message)
    assert all(part in exc.value.hint for part in hint_parts)
