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
from collections import deque
from collections.abc import Generator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ..errors import BuildError, EngineError, ToolMissingError
from .base import BuildSpec, ContainerEngine, PushEvent, RegistryAuth

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
        log_path.parent.mkdir(parents=True, exist_ok=True)
        tail: deque[str] = deque(maxlen=400)
        with _private_config(spec.cache_auth) as config, log_path.open("w") as log:
            if config:
                cmd = [cmd[0], "--config", config, *cmd[1:]]
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
            assert proc.stdout is not None
            for line in proc.stdout:
                log.write(line)
                tail.append(line.rstrip("\n"))
                if echo:
                    sys.stdout.write(line)
            rc = proc.wait()
        if rc != 0 or not iid.exists():
            raise failing_step(list(tail), log_path)
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

    def run(self, image: str, args: list[str], *, user: str | None = None, entrypoint: str | None = None,
            volumes: list[str] = (), env: dict[str, str] | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
        cmd = [self.cli, "run", "--rm"]
        if user:
            cmd += ["--user", user]
        if entrypoint is not None:
            cmd += ["--entrypoint", entrypoint]
        for v in volumes:
            cmd += ["-v", v]
        for k, v in (env or {}).items():
            cmd += ["-e", f"{k}={v}"]
        return _run([*cmd, image, *args], timeout=timeout)


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
