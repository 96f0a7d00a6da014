"""Container engines: the interface (base.py), its Docker implementation (docker.py) and the daemonless one
(podman.py: buildah builds, podman runs), chosen by image.engine (`podman`, or a Docker mode).

Everything outside this package names an engine as ContainerEngine and gets one from `detect` (make build:
a CLI that builds with BuildKit, engine reachable) or `connect` (push and pull: no probing).
"""

from __future__ import annotations

from .base import BuildSpec, ContainerEngine, PushEvent, RegistryAuth
from .docker import DockerEngine, context_paths
from .podman import PodmanEngine

__all__ = ["BuildSpec", "ContainerEngine", "DockerEngine", "PodmanEngine", "PushEvent", "RegistryAuth", "connect",
           "context_paths", "detect"]


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
