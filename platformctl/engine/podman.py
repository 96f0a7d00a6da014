"""The daemonless implementation of the container-engine interface: buildah builds, podman runs.

No daemon: every call is a process that works on the containers storage (/var/lib/containers/storage as
root) directly. buildah (`buildah bud`) builds the same Dockerfile as BuildKit (cache, secret, tmpfs and
`from=<stage>` bind mounts), with `--timestamp 0` and SOURCE_DATE_EPOCH so that the same commit gives the
same image id; podman inspects, tags, pushes, pulls and runs, with a Docker-compatible command line (the
image checks and the stack call it as they call docker).

Two traps of this kind of host are handled by the project's own containers.conf (docker/containers.conf,
passed through CONTAINERS_CONF, never written to /etc): crun fails on a cgroup v1/hybrid host ("cgroups in
hybrid mode not supported": runtime runc), and podman's default ulimits fail in a sandbox that cannot
raise RLIMIT_NOFILE (`default_ulimits` set to values it can grant).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
import subprocess
from collections.abc import Generator
from dataclasses import replace
from pathlib import Path

from ..errors import BuildError, EngineError, ToolMissingError
from .base import BuildSpec, PushEvent, RegistryAuth
from .docker import DockerEngine, stream_build

CONTAINERS_CONF = Path(__file__).resolve().parents[2] / "docker" / "containers.conf"
START_HINT = "podman needs no daemon: run make doctor ENGINE=podman to see what is missing"
INSTALL_HINT = "run make build ENGINE=podman as root to have it installed, or `apt-get install podman buildah`"
# Passed as the build arg SOURCE_DATE_EPOCH: with it set, Python writes checked-hash bytecode (buildah's
# --timestamp 0 sets every file's mtime to 0, which makes timestamp pycs stale) and useradd a fixed date.
# 0, not the commit's time: a constant keeps the dependency layers the same from one commit to the next
# (the image's created label is the commit's time: CREATED).
BUILD_EPOCH = "0"


def engine_env(environ: dict[str, str] | None = None) -> dict[str, str]:
    """The environment every podman and buildah call runs with: the project's containers.conf, unless the
    caller names one of their own."""
    env = dict(os.environ if environ is None else environ)
    env.setdefault("CONTAINERS_CONF", str(CONTAINERS_CONF))
    return env


def _run(cmd: list[str], timeout: int | None = 120, **kw) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, env=engine_env(), timeout=timeout, **kw)
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(cmd, 124, "", f"{' '.join(cmd[:3])}: no answer within {timeout} s")


def normalize_id(image_id: str) -> str:
    """podman prints bare hex ids; the interface speaks Docker's `sha256:<hex>`."""
    image_id = image_id.strip()
    return image_id if not image_id or ":" in image_id else f"sha256:{image_id}"


class PodmanEngine(DockerEngine):
    """Containers (run, start, the Container handle, exec, logs) go through podman's Docker-compatible command
    line, as DockerEngine drives docker's; builds, images and pushes are podman's and buildah's own."""

    name = "podman"
    start_hint = START_HINT

    def __init__(self, cli: str, builder: str, mode: str = "buildah"):
        self.cli = cli
        self.builder = builder
        self.mode = mode
        # the image checks and the stack run `engine.cli` as a subprocess of their own: they must see the
        # project's containers.conf too
        os.environ.setdefault("CONTAINERS_CONF", str(CONTAINERS_CONF))

    @classmethod
    def find(cls) -> tuple[str | None, str | None]:
        return shutil.which("podman"), shutil.which("buildah")

    @classmethod
    def connect(cls, cli: str | None = None) -> PodmanEngine:
        podman, buildah = cls.find()
        return cls(cli or podman or "podman", buildah or "buildah", "unprobed")

    @classmethod
    def detect(cls, cli: str | None = None, mode: str = "auto") -> PodmanEngine:
        podman, buildah = cls.find()
        podman = cli or podman
        missing = [n for n, p in (("podman", podman), ("buildah", buildah)) if not p or not shutil.which(p)]
        if missing:
            raise ToolMissingError(f"image.engine is podman but {' and '.join(missing)} is not installed", INSTALL_HINT)
        eng = cls(podman, buildah)
        p = _run([podman, "info", "--format", "{{.Host.OCIRuntime.Name}}"], timeout=60)
        if p.returncode != 0:
            err = (p.stderr.strip().splitlines() or ["no answer"])[-1]
            raise EngineError(f"podman cannot use this host's containers storage: {err[:300]}",
                              f"see `CONTAINERS_CONF={CONTAINERS_CONF} podman info`; a storage left by another "
                              "tool (e.g. another storage driver in /var/lib/containers/storage) must be reset "
                              "with `podman system reset` first")
        return eng

    # ----------------------------------------------------------------- build
    def build_command(self, spec: BuildSpec, iidfile: Path) -> tuple[list[str], dict[str, str]]:
        env = engine_env()
        # reproducible: file mtimes and the image's created date are fixed (--timestamp 0), and the RUN steps
        # see SOURCE_DATE_EPOCH (BUILD_EPOCH)
        cmd = [self.builder, "bud", "--layers", "--timestamp", "0", "-f", str(spec.dockerfile),
               "--iidfile", str(iidfile)]
        if spec.target:
            cmd += ["--target", spec.target]
        if spec.platform:
            cmd += ["--platform", spec.platform]
        args = {**spec.build_args, "SOURCE_DATE_EPOCH": BUILD_EPOCH}
        for k, v in args.items():
            cmd += ["--build-arg", f"{k}={v}"]
        for sid, path in spec.secrets.items():
            cmd += ["--secret", f"id={sid},src={path}"]
        for t in spec.tags:
            cmd += ["-t", t]
        if spec.no_cache:
            cmd += ["--no-cache"]
        # BuildKit's registry cache (cache_from, inline_cache) has no buildah equivalent that reads BuildKit's
        # format: a podman build uses the local layer cache only
        cmd.append(str(spec.context))
        return cmd, env

    def build(self, spec: BuildSpec, log_path: Path, echo: bool = True) -> str:
        iid = log_path.with_suffix(".iid")
        iid.unlink(missing_ok=True)
        # buildah 1.28's layer cache keys a RUN step by its text and build args, not by the files it
        # bind-mounts from the context (an edited operators package came back from the cache as it was): the
        # Dockerfile is built from a copy in which every stage declares the digest of those inputs
        with tempfile.TemporaryDirectory(prefix="podman-build-") as tmp:
            keyed = Path(tmp) / "Dockerfile"
            keyed.write_text(keyed_dockerfile(spec.dockerfile.read_text(), spec.context, spec.build_args))
            return self._build(replace(spec, dockerfile=keyed), log_path, iid, echo)

    def _build(self, spec: BuildSpec, log_path: Path, iid: Path, echo: bool) -> str:
        cmd, env = self.build_command(spec, iid)
        rc, tail = stream_build(cmd, env, log_path, echo)
        if rc != 0 or not iid.exists():
            raise failing_step(tail, log_path)
        return normalize_id(iid.read_text())

    # ----------------------------------------------------------------- inspect / tag / pull / run
    def inspect(self, ref: str) -> dict:
        p = _run([self.cli, "image", "inspect", ref])
        if p.returncode != 0:
            raise EngineError(f"image {ref} not found: {p.stderr.strip()[:300]}", "run make build ENGINE=podman")
        info = json.loads(p.stdout)[0]
        info["Id"] = normalize_id(info.get("Id", ""))
        return info

    def image_id(self, ref: str) -> str | None:
        p = _run([self.cli, "image", "inspect", "--format", "{{.Id}}", ref])
        return normalize_id(p.stdout) if p.returncode == 0 else None

    def tag(self, src: str, dst: str) -> None:
        p = _run([self.cli, "tag", src, dst])
        if p.returncode != 0:
            raise EngineError(f"podman tag {src} {dst} failed: {p.stderr.strip()[:300]}")

    def pull(self, ref: str, timeout: int | None = 120, auth: RegistryAuth | None = None
             ) -> subprocess.CompletedProcess:
        cmd = [self.cli, "pull", "-q", *_tls_flags(ref)]
        if auth:
            cmd += ["--creds", f"{auth.username}:{auth.password}"]
        return _run([*cmd, ref], timeout=timeout)

    def push(self, repository: str, tag: str, auth: RegistryAuth | None = None
             ) -> Generator[PushEvent, None, None]:
        """podman pushes the layers the registry lacks and the manifest last; its digest file says what the
        registry stored. podman reports no byte counts: one event per layer line it prints."""
        ref = f"{repository}:{tag}"
        digestfile = Path(os.environ.get("TMPDIR", "/tmp")) / f"podman-push-{os.getpid()}-{abs(hash(ref))}.digest"
        cmd = [self.cli, "push", "--digestfile", str(digestfile), *_tls_flags(ref)]
        if auth:
            cmd += ["--creds", f"{auth.username}:{auth.password}"]
        proc = subprocess.Popen([*cmd, ref], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                env=engine_env())
        assert proc.stdout is not None
        lines: list[str] = []
        try:
            for line in proc.stdout:
                line = line.strip()
                lines.append(line)
                m = re.match(r"Copying blob (\S+) (skipped: already exists|done)?", line)
                if m:
                    yield PushEvent(status="Layer already exists" if m.group(2) and "skipped" in m.group(2)
                                    else "Pushed", layer=m.group(1))
            rc = proc.wait()
            if rc != 0:
                yield PushEvent(error=next((ln for ln in reversed(lines) if "rror" in ln), f"podman push exit {rc}"))
                return
            digest = digestfile.read_text().strip() if digestfile.exists() else None
            yield PushEvent(status=f"{tag}: digest: {digest}", digest=digest)
        finally:
            if proc.poll() is None:
                proc.kill()
            digestfile.unlink(missing_ok=True)

    def import_from_docker(self, ref: str) -> bool:
        """Copy image ref from a local Docker engine into podman's storage (skopeo's docker-daemon transport),
        when one is running and has it: a host with both engines makes its base image once. False when not."""
        if not shutil.which("skopeo"):
            return False
        p = _run(["skopeo", "copy", "-q", f"docker-daemon:{ref}", f"containers-storage:{ref}"], timeout=600)
        return p.returncode == 0 and self.image_id(ref) is not None

    def save_oci_layout(self, ref: str, dest: Path) -> Path:
        p = _run([self.cli, "save", "--format", "oci-dir", "-o", str(dest), ref], timeout=900)
        if p.returncode:
            raise EngineError(f"podman save {ref} failed: {p.stderr.strip()[-300:]}")
        return dest

    def remove_image(self, ref: str) -> None:
        _run([self.cli, "rmi", ref])

    def version(self) -> str:
        p = _run([self.builder, "--version"], timeout=20)  # buildah builds: its version is the build's
        return (p.stdout.strip().split() or ["", "", "unknown"])[2] if p.returncode == 0 else "unknown"

    def answers(self, timeout: int = 10) -> bool:
        return True  # no daemon: every call works on the storage directly

    def compose_command(self) -> list[str]:
        raise ToolMissingError("the local stack runs on the Docker engine: ENGINE=podman builds and checks images "
                               "without a daemon, make up needs one",
                               "run make up with the Docker engine (unset ENGINE, or ENGINE=auto)")

    def socket_gid(self) -> int:
        return 0


_FROM = re.compile(r"^\s*FROM\s+(?:--\S+\s+)*(\S+)(?:\s+AS\s+(\S+))?\s*$", re.IGNORECASE)
_VAR = re.compile(r"\$\{(\w+)\}|\$(\w+)")
INPUTS_ARG = "BUILDAH_INPUTS"


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """(index of its first line, the instruction with continuations joined) for each instruction."""
    out, start, cur = [], None, ""
    for i, line in enumerate(text.splitlines()):
        stripped = line.strip()
        if start is None and (not stripped or stripped.startswith("#")):
            continue
        if start is not None and stripped.startswith("#"):
            continue
        start = i if start is None else start
        if stripped.endswith("\\"):
            cur += stripped[:-1] + " "
            continue
        out.append((start, cur + stripped))
        start, cur = None, ""
    return out


def _digest_paths(context: Path, rels: list[str]) -> str:
    h = hashlib.sha256()
    for rel in sorted(set(rels)):
        base = (context / rel).resolve()
        files = [base] if base.is_file() else sorted(p for p in base.rglob("*") if p.is_file()
                                                     and "__pycache__" not in p.parts and p.suffix != ".pyc")
        for f in files:
            h.update(f"{f.relative_to(context.resolve()) if f.is_relative_to(context.resolve()) else f}\0".encode())
            h.update(f.read_bytes() if f.exists() else b"(missing)")
            h.update(b"x" if os.access(f, os.X_OK) else b"-")
    return h.hexdigest()


def keyed_dockerfile(text: str, context: Path, build_args: dict[str, str]) -> str:
    """text with `ARG BUILDAH_INPUTS=<digest>` after each FROM: the digest of what the stage's RUN steps
    bind-mount, from the context or from other stages and images (COPY needs none: buildah keys it by the
    content it copies). A RUN step's cache then follows its inputs, as BuildKit's does; a change to them
    rebuilds that stage only; nothing else about the build changes."""
    values = dict(build_args)
    stages: list[dict] = []
    for idx, instr in _logical_lines(text):
        word = instr.split(None, 1)[0].upper()
        expand = lambda t: _VAR.sub(lambda m: values.get(m.group(1) or m.group(2), m.group(0)), t)  # noqa: E731
        if word == "FROM":
            m = _FROM.match(instr)
            stages.append({"line": idx, "name": (m.group(2) or "").lower() if m else "",
                           "base": expand(m.group(1)) if m else "", "paths": [], "deps": [],
                           "copies": [], "copy_deps": []})
            continue
        if word == "ARG" and not stages:
            k, eq, v = instr.split(None, 1)[1].partition("=")
            values.setdefault(k.strip(), v.strip().strip('"') if eq else "")
            continue
        if not stages:
            continue
        st = stages[-1]
        if word == "RUN":
            for spec in re.findall(r"--mount=(\S+)", instr):
                opts = dict(kv.split("=", 1) for kv in spec.split(",") if "=" in kv)
                if opts.get("type", "bind") != "bind":
                    continue
                if "from" in opts:
                    st["deps"].append(expand(opts["from"]).lower())
                elif "source" in opts:
                    st["paths"].append(expand(opts["source"]))
        elif word in ("COPY", "ADD"):
            words = instr.split()[1:]
            src_from = next((w.split("=", 1)[1] for w in words if w.startswith("--from=")), None)
            srcs = [w for w in words if not w.startswith("--")][:-1]
            if src_from:
                st["copy_deps"].append(expand(src_from).lower())
            else:
                st["copies"] += [expand(w) for w in srcs]
    def index(name: str, before: int) -> int | None:
        return next((k for k in range(before) if stages[k]["name"] == name), None)

    def dep_keys(i: int, deps: list[str]) -> list[str]:
        # a stage: what it holds (content key); an image (the uv image, a base): its name, which holds its version
        return [content_key(j) if (j := index(dep, i)) is not None else dep for dep in deps]

    def run_key(i: int) -> str:
        """What the stage's RUN steps mount: the key its ARG line carries."""
        st = stages[i]
        return hashlib.sha256("\0".join([_digest_paths(context, st["paths"]), *dep_keys(i, st["deps"])]).encode()
                              ).hexdigest()[:32]

    def content_key(i: int) -> str:
        """What the stage holds: its RUN inputs, what it copies, and its base stage's content."""
        st = stages[i]
        base = index(st["base"].lower(), i)
        return hashlib.sha256("\0".join([run_key(i), _digest_paths(context, st["copies"]),
                                          *dep_keys(i, st["copy_deps"]),
                                          content_key(base) if base is not None else st["base"]]).encode()
                              ).hexdigest()

    inserts = {st["line"]: run_key(i) for i, st in enumerate(stages)}
    out = []
    for i, line in enumerate(text.splitlines()):
        out.append(line)
        if i in inserts:
            out.append(f"ARG {INPUTS_ARG}={inserts[i]}")
    return "\n".join(out) + "\n"


def _tls_flags(ref: str) -> list[str]:
    """A registry on this machine's loopback speaks plain HTTP (scripts/local-registry.sh), as Docker assumes
    for 127.0.0.0/8; podman needs to be told."""
    host = ref.split("/", 1)[0]
    return ["--tls-verify=false"] if host.startswith(("127.", "localhost")) else []


_STEP = re.compile(r"^\[(\d+)/(\d+)\] STEP (\d+)/(\d+): (.*)$")


def failing_step(lines: list[str], log_path: Path) -> BuildError:
    """The last step buildah started, and its last lines (buildah prints `[stage/stages] STEP n/m: INSTR`)."""
    starts = [i for i, ln in enumerate(lines) if _STEP.match(ln)]
    reason = next((ln for ln in reversed(lines) if re.search(r"error|Error", ln)), "build failed")
    if not starts:
        return BuildError(reason.strip()[:300], f"full log: {log_path}")
    i = starts[-1]
    m = _STEP.match(lines[i])
    body = [ln for ln in lines[i + 1:] if ln.strip()][-15:]
    return BuildError(f"step [stage {m.group(1)}/{m.group(2)}, {m.group(5)[:120]}] failed: {reason.strip()[:300]}",
                      f"full log: {log_path}; the step's last lines:\n" + "\n".join(body))
