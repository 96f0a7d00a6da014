"""Shared fixtures. Integration tests never skip in CI (CI=true): a missing engine fails them."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def docker_cli() -> str | None:
    """A Docker CLI that talks to a running engine, preferring one with BuildKit (/usr/bin/docker 20.10)."""
    for cand in (os.environ.get("DOCKER"), "/usr/bin/docker", shutil.which("docker")):
        if cand and Path(cand).exists():
            ok = subprocess.run([cand, "info", "--format", "{{.ServerVersion}}"], capture_output=True, timeout=20)
            if ok.returncode == 0:
                return cand
    return None


def require(condition: bool, why: str) -> None:
    """Skip locally when a real engine/service is missing; fail in CI, where .ci/run must provide it."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"CI must provide this: {why}")
    pytest.skip(why)


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def docker() -> str:
    cli = docker_cli()
    require(cli is not None, "no running Docker engine (start dockerd)")
    return cli  # type: ignore[return-value]


@pytest.fixture(scope="session")
def image(docker: str) -> str:
    """The image under test: $PLATFORM_IMAGE (set by `make build`), else the last build record."""
    ref = os.environ.get("PLATFORM_IMAGE")
    record = ROOT / "build" / "build-record.json"
    if not ref and record.exists():
        ref = json.loads(record.read_text())["image_id"]
    require(bool(ref), "no image to test: run make build first")
    ok = subprocess.run([docker, "image", "inspect", ref], capture_output=True).returncode == 0
    require(ok, f"image {ref} is not in the local engine: run make build")
    return ref  # type: ignore[return-value]
