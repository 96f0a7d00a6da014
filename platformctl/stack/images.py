"""Images the local stack needs besides the platform image: PostgreSQL and the example job images.

All are built locally from the project's own files on a Debian base (no Docker Hub), by content:
an image whose context is unchanged is reused by BuildKit's cache.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from ..config import PlatformConfig
from .errors import StackError

POSTGRES_CONTEXT = "stack/postgres"


def support_base(cfg: PlatformConfig) -> str:
    if cfg.stack.support_base_image:
        return cfg.stack.support_base_image
    if cfg.image.base_mode == "python":
        return cfg.image.resolved_base_image(cfg.airflow_version)
    raise StackError("the local stack needs a Debian base image for PostgreSQL and the job images",
                     "set stack.support_base_image in platform.yaml (e.g. python:3.12-slim-bookworm)")


def build_image(docker: str, tag: str, context: Path, base: str, *, ca_bundle: str | None = None) -> None:
    if not (context / "Dockerfile").exists():
        raise StackError(f"no Dockerfile in {context}", "fix stack.job_images in platform.yaml", where=str(context))
    cmd = [docker, "build", "-q", "-t", tag, "--build-arg", f"BASE_IMAGE={base}"]
    if ca_bundle:
        cmd += ["--secret", f"id=ca_bundle,src={ca_bundle}"]
    env = {**os.environ, "DOCKER_BUILDKIT": "1"}
    p = subprocess.run([*cmd, str(context)], capture_output=True, text=True, env=env)
    if p.returncode != 0:
        tail = "\n".join((p.stderr or p.stdout).strip().splitlines()[-15:])
        raise StackError(f"building {tag} from {context} failed:\n{tail}", "fix the Dockerfile, or make its base image available (stack.support_base_image or BASE_IMAGE=)")


def build_support_images(root: Path, cfg: PlatformConfig, docker: str, *, echo=print) -> list[str]:
    base = support_base(cfg)
    ca = cfg.image.build_secrets.get("ca_bundle")
    built = []
    for tag, ctx in [(cfg.stack.postgres_image, POSTGRES_CONTEXT), *cfg.stack.job_images.items()]:
        echo(f"  image {tag} from {ctx}")
        build_image(docker, tag, root / ctx, base, ca_bundle=ca)
        built.append(tag)
    return built
