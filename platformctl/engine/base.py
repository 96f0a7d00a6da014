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

from ..errors import EngineError


@dataclass(frozen=True)
class RegistryAuth:
    """Credentials for one registry host (`host[:port]`, `docker.io` for Docker Hub)."""

    registry: str
    username: str
    password: str = field(repr=False)  # never shown in a traceback or log


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


class Container(ABC):
    """A container started detached (`ContainerEngine.start`): repo2docker's `Container` handle.

    Also a context manager: leaving the block removes the container (stopped first if it runs)."""

    id: str

    @abstractmethod
    def inspect(self) -> dict | None:
        """The engine's description of the container (Docker's `container inspect` shape: State, Config...);
        None once it is gone."""

    def status(self) -> str | None:
        """created, running, exited, ... (State.Status); None once the container is gone."""
        info = self.inspect()
        return ((info or {}).get("State") or {}).get("Status") if info is not None else None

    def running(self) -> bool:
        return self.status() == "running"

    def exit_code(self) -> int | None:
        """The exit code once it has exited; None while it runs or once it is gone."""
        info = self.inspect()
        state = (info or {}).get("State") or {}
        return state.get("ExitCode") if info is not None and state.get("Status") in ("exited", "dead") else None

    @abstractmethod
    def logs(self, tail: int | None = None) -> str:
        """Its output so far (stdout and stderr), the last `tail` lines when given; "" once it is gone."""

    @abstractmethod
    def wait(self, timeout: float | None = None) -> int:
        """Block until it exits; its exit code. TimeoutError when it still runs after timeout seconds."""

    @abstractmethod
    def stop(self, timeout: int = 10) -> None:
        """Stop it (SIGTERM, then SIGKILL after timeout seconds). Nothing when it is not running."""

    @abstractmethod
    def remove(self) -> None:
        """Remove it, stopping it first if it runs. Nothing when it is already gone."""

    @abstractmethod
    def exec(self, args: list[str], *, input: str | None = None, user: str | None = None,
             env: dict[str, str] | None = None, timeout: int | None = 300) -> subprocess.CompletedProcess:
        """Run args inside the running container, to completion (stdin from `input`)."""

    def __enter__(self) -> Container:
        return self

    def __exit__(self, *exc) -> None:
        self.remove()


class ContainerEngine(ABC):
    """A container engine. `cli` is its command-line client (only the engine package runs it: everything
    else asks the engine), `mode` how it builds (Docker: "buildx" or "docker-buildkit"), `start_hint` what
    to do when it is down."""

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

    def answers(self, timeout: int = 10) -> bool:
        """Whether the engine (not only its CLI) answers now (a daemonless engine always does)."""
        return True

    # ------------------------------------------------------------------------------------ containers
    # The options of run and start (all optional):
    #   user, entrypoint, workdir     as `docker run --user/--entrypoint/--workdir`
    #   volumes                       "src:dst[:ro]" bind mounts or named volumes
    #   env, labels                   environment variables and container labels
    #   network                       a network name, "none" (no network), "host"; None: the engine's default
    #   ports                         "127.0.0.1:HOST:CONTAINER" publications
    #   name                          the container's name (so another process can find it by name)
    @abstractmethod
    def run(self, image: str, args: list[str], *, user: str | None = None, entrypoint: str | None = None,
            volumes: list[str] = (), env: dict[str, str] | None = None, timeout: int | None = 300,
            input: str | None = None, network: str | None = None, labels: dict[str, str] | None = None,
            name: str | None = None, workdir: str | None = None) -> subprocess.CompletedProcess:
        """Run a container of image with args to completion (stdin from `input`, stdout/stderr captured as
        text) and remove it. A run that does not finish within timeout seconds raises
        subprocess.TimeoutExpired, its container removed."""

    @abstractmethod
    def start(self, image: str, args: list[str], *, user: str | None = None, entrypoint: str | None = None,
              volumes: list[str] = (), env: dict[str, str] | None = None, network: str | None = None,
              labels: dict[str, str] | None = None, name: str | None = None, workdir: str | None = None,
              ports: list[str] = (), remove: bool = True) -> Container:
        """Start a container of image with args in the background (detached); its handle. With remove, the
        engine removes it once it exits (its logs go with it). EngineError when it cannot be started."""

    @abstractmethod
    def container(self, ref: str) -> Container:
        """The handle of an existing container (id or name); its methods say when it is gone."""

    def compose_command(self) -> list[str]:
        """The command line of a compose v2 client that drives this engine (the local stack)."""
        from ..errors import ToolMissingError

        raise ToolMissingError(f"the {self.name} engine has no compose client")

    def socket_gid(self) -> int:
        """The group id owning the engine's socket (a container that drives the engine runs with it), 0 if none."""
        return 0

    def import_from_docker(self, ref: str) -> bool:
        """Copy image ref from a local Docker engine into this engine's storage, if that engine runs and has
        it (the daemonless engine does; Docker already has what it has). False when nothing was copied."""
        return False

    def save_oci_layout(self, ref: str, dest: Path) -> Path:
        """Image ref written as an OCI image layout in dest, layers uncompressed (make verify-reproducible)."""
        raise EngineError(f"the {self.name} engine cannot write an OCI layout here", "use ENGINE=podman")

    def remove_image(self, ref: str) -> None:
        """Remove the local name ref (the image stays while another name holds it); a missing one is no error."""
        raise EngineError(f"the {self.name} engine does not remove images here")

    def version(self) -> str:
        """The engine's version (the daemon's for Docker), "unknown" when it does not say."""
        return "unknown"
