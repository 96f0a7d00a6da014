"""Shared fixtures. Integration tests never skip in CI (CI=true) nor under `make test` (PLATFORM_TEST_STRICT=1):
a missing engine or service fails them. Settings come from the configuration as this machine resolved it
(platform.yaml + .platform/local.yaml + the environment), never from variables only CI sets."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
_TRUE = {"1", "true", "yes"}
IN_CI = os.environ.get("CI", "").lower() in _TRUE
STRICT = IN_CI or os.environ.get("PLATFORM_TEST_STRICT", "").lower() in _TRUE


def config():
    """The platform configuration as `make build` resolved it on this machine."""
    from platformctl.config import collect_overrides, load_config

    return load_config(ROOT, collect_overrides())


def base_image() -> str:
    """The base image the platform builds on here (made locally by make build when none can be pulled)."""
    cfg = config()
    return cfg.image.resolved_base_image(cfg.airflow_version)


def docker_cli() -> str | None:
    """A Docker CLI that talks to a running engine: the resolved one, else one with BuildKit (/usr/bin/docker 20.10)."""
    for cand in (config().image.docker, "/usr/bin/docker", shutil.which("docker")):
        if cand and Path(cand).exists():
            ok = subprocess.run([cand, "info", "--format", "{{.ServerVersion}}"], capture_output=True, timeout=20)
            if ok.returncode == 0:
                return cand
    return None


def require(condition: bool, why: str) -> None:
    """Skip a bare local pytest run when a real engine/service is missing; fail in CI and under `make test`,
    which set the host up first."""
    if condition:
        return
    if STRICT:
        pytest.fail(f"make test / CI must provide this: {why}")
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


def current_version(bundle) -> str | None:
    """A DAG bundle's current version id: Airflow 3.3 returns a BundleVersion, 3.2 the bare string."""
    v = bundle.get_current_version()
    return getattr(v, "version", v)
