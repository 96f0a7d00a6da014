"""The container-engine interface: what the build, the registry and the local stack ask of an engine.

The shape is repo2docker's (`repo2docker/engine.py`): build, inspect, tag, push, pull, run, plus the
image id lookup the build uses to tell whether the engine has an image. Engine-specific formats stop here:
a push reports `PushEvent`s, credentials come in as `RegistryAuth`, a failure that is the engine's is an
EngineError / BuildError with a hint, whatever the engine. Docker (CLI, BuildKit) is the one implementation
(engine/docker.py), the daemonless one (buildah builds, podman runs: engine/podman.py) is the other; the
configuration's image.engine chooses (`engine.detect`).
"""

from __future__ import annotations

import subprocess
from abc import ABC, abstractmethod
from collections.abc import Generator
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class RegistryAuth:
    """Credentials for one registry host (`host[:port]`, `docker.io` for Docker Hub)."""

    registry: str
    username: str
    password: str

    def __repr__(self) -> str:  # never shows the password in a traceback or log
        return f"RegistryAuth(registry={self.registry!r}, username={self.username!r}, password=***)"


@dataclass(frozen=True)
class BuildSpec:
    context: Path
    dockerfile: Path
    tags: tuple[str, ...]
    build_args: dict[str, str] = field(default_factory=dict)
    secrets: dict[str, Path] = field(default_factory=dict)
    target: str | None = None
    platform: str | None = None
    # BuildKit's layer cache kept in a registry between machines (CI runs): images to read it from, and
    # whether the image built carries it (inline cache: it rides with the pushed image). Not inputs: they
    # change how fast a build is, never what it makes.
    cache_from: tuple[str, ...] = ()
    inline_cache: bool = False
    cache_auth: RegistryAuth | None = None  # credentials to read cache_from with
    no_cache: bool = False  # build every step again (make verify-reproducible)


@dataclass(frozen=True)
class PushEvent:
    """One progress report of a push: a layer's state, bytes sent so far, the stored digest, or an error."""

    status: str = ""  # e.g. "Pushing", "Pushed", "Layer already exists", "Mounted from x", "Retrying in 5 seconds"
    layer: str | None = None
    current: int = 0  # bytes of this layer sent so far (status "Pushing")
    digest: str | None = None  # the manifest digest, once the registry stored the tag
    error: str | None = None  # the engine or registry refused: the push is over


class ContainerEngine(ABC):
    """A container engine. `cli` is its command-line client (the image checks run containers through it),
    `mode` how it builds (Docker: "buildx" or "docker-buildkit"), `start_hint` what to do when it is down."""

    name: str = "engine"
    cli: str
    mode: str
    start_hint: str = "start the container engine"

    @abstractmethod
    def build(self, spec: BuildSpec, log_path: Path, echo: bool = True) -> str:
        """Build spec, the full log in log_path (streamed to stdout when echo); returns the image id.
        A failed build raises BuildError naming the failing step."""

    @abstractmethod
    def inspect(self, ref: str) -> dict:
        """The engine's description of image ref (Docker's `image inspect` shape: Id, Config.Labels, RootFS...);
        EngineError when it has no such image."""

    @abstractmethod
    def image_id(self, ref: str) -> str | None:
        """The id of image ref, or None when the engine does not have it."""

    @abstractmethod
    def tag(self, src: str, dst: str) -> None:
        """Give the local image src the name dst (`repository:tag`)."""

    @abstractmethod
    def push(self, repository: str, tag: str, auth: RegistryAuth | None = None
             ) -> Generator[PushEvent, None, None]:
        """Push the local repository:tag, reporting progress; an event with `error` ends it. Closing the
        generator before the end cancels the push."""

    @abstractmethod
    def pull(self, ref: str, timeout: int | None = 120, auth: RegistryAuth | None = None
             ) -> subprocess.CompletedProcess:
        """Pull ref; a pull that does not finish within timeout (s, None: no limit) comes back with returncode 124."""

    @abstractmethod
    def run(self, image: str, args: list[str], *, user: str | None = None, entrypoint: str | None = None,
            volumes: list[str] = (), env: dict[str, str] | None = None, timeout: int = 300
            ) -> subprocess.CompletedProcess:
        """Run a container of image with args to completion and remove it."""

    def import_from_docker(self, ref: str) -> bool:
        """Copy image ref from a local Docker engine into this engine's storage, if that engine runs and has
        it (the daemonless engine does; Docker already has what it has). False when nothing was copied."""
        return False
