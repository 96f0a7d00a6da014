"""The host set-up on a machine that make build already set up: a second run installs, starts and says
nothing, every command reads what was remembered, and the doctor names each value's source."""

from __future__ import annotations

import os
import subprocess
import sys


from platformctl import machine
from platformctl.config import ENV_OVERRIDES
from tests.conftest import ROOT, require


def _cli(repo, *args):
    env = {k: v for k, v in os.environ.items() if k not in ENV_OVERRIDES}  # nothing passed by hand
    env["PLATFORM_ROOT"] = str(repo)
    return subprocess.run([sys.executable, str(repo / "build.py"), *args], capture_output=True, text=True,
                          env=env, cwd=repo)


def test_a_second_build_says_nothing_about_set_up(project_copy, docker):
    require(machine.path(ROOT).exists(), "make build has not set this machine up (no .platform/local.yaml)")
    p = _cli(project_copy, "build", "--no-test", "--quiet", "--no-reuse")
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    assert "setup:" not in p.stdout + p.stderr
    assert p.stdout.startswith("building ")  # straight to the build: nothing installed, started or remembered
    assert machine.load(project_copy) == machine.load(ROOT)


def test_doctor_shows_each_resolved_value_and_its_source(docker):
    require(machine.path(ROOT).exists(), "make build has not set this machine up (no .platform/local.yaml)")
    p = _cli(ROOT, "doctor")
    assert p.returncode == 0, p.stdout + p.stderr
    remembered = machine.load(ROOT)
    rows = {line.split()[0]: line for line in p.stdout.splitlines() if line.startswith("  image.")}
    assert remembered["image.base_image"] in rows["image.base_image"]
    assert rows["image.base_image"].rstrip().endswith(machine.SOURCE)
    assert "ok       Docker engine                running" in p.stdout
    assert "make build: missing" not in p.stdout  # make build left nothing for itself to do


def test_a_variable_wins_over_the_machine_file(project_copy, docker):
    env = {k: v for k, v in os.environ.items() if k not in ENV_OVERRIDES}
    p = subprocess.run([sys.executable, "build.py", "doctor"], capture_output=True, text=True, cwd=project_copy,
                       env={**env, "PLATFORM_ROOT": str(project_copy), "DOCKER": "/usr/bin/docker",
                            "REGISTRY": "127.0.0.1:1/some/where"})
    assert p.returncode == 0, p.stdout + p.stderr
    row = next(ln for ln in p.stdout.splitlines() if ln.startswith("  registry.repository"))
    assert "127.0.0.1:1/some/where" in row and row.rstrip().endswith("environment variable REGISTRY")
    docker_row = next(ln for ln in p.stdout.splitlines() if ln.startswith("  image.docker"))
    assert docker_row.rstrip().endswith("environment variable DOCKER")
