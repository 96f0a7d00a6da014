"""Engine errors with the real Docker CLI: the cause and the fix, not the CLI's template noise."""

from __future__ import annotations

import pytest

from platformctl.errors import EngineError, ToolMissingError
from platformctl.image.engine import DockerEngine

pytestmark = pytest.mark.integration


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
