"""Helpers to run commands in the image under test (the `image` fixture is in tests/conftest.py)."""

from __future__ import annotations

import json
import subprocess

import pytest


@pytest.fixture(scope="session")
def run_in(docker: str, image: str):
    def run(*args: str, user: str | None = None, entrypoint: str | None = None, volumes=(), env=None,
            check: bool = True, timeout: int = 300) -> subprocess.CompletedProcess:
        cmd = [docker, "run", "--rm"]
        if user:
            cmd += ["--user", user]
        if entrypoint:
            cmd += ["--entrypoint", entrypoint]
        for v in volumes:
            cmd += ["-v", v]
        for k, v in (env or {}).items():
            cmd += ["-e", f"{k}={v}"]
        p = subprocess.run([*cmd, image, *args], capture_output=True, text=True, timeout=timeout)
        if check and p.returncode != 0:
            raise AssertionError(f"{args} exited {p.returncode}:\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}")
        return p

    return run


@pytest.fixture(scope="session")
def labels(docker: str, image: str) -> dict[str, str]:
    out = subprocess.run([docker, "image", "inspect", image, "--format", "{{json .Config.Labels}}"],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out)
