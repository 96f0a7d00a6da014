"""Container engines: the interface (base.py), its Docker implementation (docker.py) and the daemonless one
(podman.py: buildah builds, podman runs), chosen by image.engine (`podman`, or a Docker mode).

Everything outside this package names an engine as ContainerEngine and gets one from `detect` (make build:
a CLI that builds with BuildKit, engine reachable), `connect` (push, pull, run: no probing) or `available`
(None when no engine client is installed). Nothing outside this package runs the engine's CLI or looks it
up: containers are run with `engine.run` (to completion, stdin, network, volumes, env, labels) or
`engine.start` (detached: a `Container` handle with logs, wait, stop, remove, inspect, status, exec);
the local stack's compose client is `engine.compose_command()` (tests/unit/engine checks it).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from .base import BuildSpec, Container, ContainerEngine, PushEvent, RegistryAuth
from .docker import DockerContainer, DockerEngine, context_paths
from .podman import PodmanEngine

__all__ = ["BuildSpec", "Container", "ContainerEngine", "DockerContainer", "DockerEngine", "PodmanEngine",
           "PushEvent", "RegistryAuth", "available", "connect", "context_paths", "detect"]


def detect(cli: str | None = None, mode: str = "auto") -> ContainerEngine:
    """The engine to build with (image.docker / DOCKER=, image.engine / ENGINE=)."""
    if mode == "podman":
        return PodmanEngine.detect()
    return DockerEngine.detect(cli, mode)


def connect(cli: str | None = None, mode: str = "auto") -> ContainerEngine:
    """The engine to push or pull with, not probed."""
    if mode == "podman":
        return PodmanEngine.connect()
    return DockerEngine.connect(cli)


def available(cli: str | None = None) -> ContainerEngine | None:
    """The engine to run containers with (image.docker / DOCKER=, else the CLI on PATH), not probed; None when
    no such client is installed (a command that can do without containers says so and goes on)."""
    found = cli if cli and (Path(cli).exists() or shutil.which(cli)) else None if cli else shutil.which("docker")
    return DockerEngine.connect(found) if found else None
