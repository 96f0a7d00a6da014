"""Helpers shared by the integration tests: a copy of the project, small derived images, uncached builds."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

from platformctl import machine
from platformctl.engine import BuildSpec, DockerEngine
from tests.conftest import ROOT

GIT_ID = ["-c", "user.name=t", "-c", "user.email=t@localhost"]


def working_tree_copy(dst: Path) -> Path:
    """A clone of the repository with its working tree as it is (tests run against uncommitted changes
    too) committed on top, so the copy builds and versions like a clean checkout."""
    subprocess.run(["git", "clone", "-q", str(ROOT), str(dst)], check=True)
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, check=True,
                           capture_output=True, text=True).stdout.split("\0")
    for rel in filter(None, files):
        src = ROOT / rel
        if src.is_file():
            (dst / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst / rel)
    subprocess.run(["git", "add", "-A"], cwd=dst, check=True)
    subprocess.run(["git", *GIT_ID, "commit", "-qm", "test: working tree", "--allow-empty"], cwd=dst, check=True)
    machine.copy_to(ROOT, dst)  # what make build resolved on this machine (git-ignored, so not cloned)
    return dst


def build_from(docker: str, ctx: Path, dockerfile: str, tag: str, files: dict[str, bytes] | None = None) -> str:
    """A small image from Dockerfile text and the files beside it (written into the new directory ctx)."""
    ctx.mkdir(parents=True)
    for name, data in (files or {}).items():
        (ctx / name).write_bytes(data)
    (ctx / "Dockerfile").write_text(dockerfile)
    subprocess.run([docker, "build", "-q", "-t", tag, str(ctx)], check=True, capture_output=True,
                   env={**os.environ, "DOCKER_BUILDKIT": "1"})
    return tag


def build_cache_ids(docker: str) -> set[str]:
    """The ids of the engine's BuildKit cache records."""
    df = subprocess.run([docker, "system", "df", "-v", "--format", "{{json .BuildCache}}"], capture_output=True,
                        text=True, check=True).stdout
    return {c["ID"] for c in json.loads(df or "[]") or []}


def remove_build_cache(docker: str, ids: set[str]) -> set[str]:
    """Remove these cache records (a child before its parent: passes until none goes); the ids left."""
    left = set(ids)
    while left:
        for cache_id in sorted(left):  # the daemon takes one id filter per call
            subprocess.run([docker, "builder", "prune", "-f", f"--filter=id={cache_id}"], capture_output=True)
        now = build_cache_ids(docker) & left
        if now == left:
            break
        left = now
    return left


def build_without_cache(engine: DockerEngine, spec: BuildSpec, tmp: Path) -> subprocess.CompletedProcess:
    """The build with --no-cache: secrets are not part of BuildKit's cache key, so only an uncached step
    proves what it did with them. Use it through the uncached_build fixture, which removes the cache
    records it made."""
    cmd, env = engine.build_command(spec, tmp / f"iid-{uuid.uuid4().hex[:6]}")
    cmd.insert(cmd.index("--progress=plain"), "--no-cache")
    return subprocess.run(cmd, env=env, capture_output=True, text=True)


def stack_cli(project: str, *args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    """`python build.py <args> --project <project>` from the repository, its output kept in the test log."""
    p = subprocess.run([sys.executable, "build.py", *args, "--project", project], cwd=ROOT,
                       capture_output=True, text=True, timeout=timeout)
    print(p.stdout[-6000:], p.stderr[-3000:])
    return p
