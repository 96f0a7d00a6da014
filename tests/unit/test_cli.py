"""The CLI edge: one line on stderr, a distinct exit code per kind of failure, no traceback."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def cli(repo: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    import os

    e = {k: v for k, v in os.environ.items() if k not in ("PYTHON", "BASE_IMAGE", "BASE_MODE", "CA_BUNDLE")}
    e.update({"PLATFORM_ROOT": str(repo), "PLATFORM_NO_INSTALL": "1", **(env or {})})
    return subprocess.run([sys.executable, str(ROOT / "build.py"), *args], capture_output=True, text=True, env=e)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "requirements", tmp_path / "requirements")
    shutil.copy(ROOT / "platform.yaml", tmp_path)
    return tmp_path


def test_lock_check_passes_on_committed_locks(repo):
    p = cli(repo, "lock-check")
    assert p.returncode == 0, p.stderr
    assert "up to date" in p.stdout


def test_editing_an_in_file_fails_lock_check_naming_the_stale_files(repo):
    (repo / "requirements/team.in").write_text((repo / "requirements/team.in").read_text() + "rich\n")
    p = cli(repo, "lock-check")
    assert p.returncode == 5
    assert "requirements/team-py312.txt: is stale against its .in file" in p.stdout + p.stderr
    assert "requirements/team-py311.txt" in p.stdout
    assert "Traceback" not in p.stderr


def test_build_refuses_a_stale_lock_before_touching_the_engine(repo):
    (repo / "requirements/airflow.in").write_text((repo / "requirements/airflow.in").read_text() + "\nrich\n")
    p = cli(repo, "build", env={"DOCKER": "/nonexistent/docker"})
    assert p.returncode == 5, p.stderr
    assert p.stderr.count("\n") == 1 and "make lock" in p.stderr


def test_bad_config_value_is_one_line_with_exit_2(repo):
    p = cli(repo, "build", env={"BASE_MODE": "alpine"})
    assert p.returncode == 2
    assert p.stderr.startswith("error: environment variable BASE_MODE: image.base_mode")
    assert "Traceback" not in p.stderr


def test_missing_build_secret_is_reported(repo):
    p = cli(repo, "build", env={"CA_BUNDLE": "/nonexistent/ca.pem", "DOCKER": "/nonexistent/docker"})
    assert p.returncode == 2, p.stderr
    assert "build secret file for 'ca_bundle' is missing: /nonexistent/ca.pem" in p.stderr


def test_unreachable_engine_says_how_to_start_it(repo, tmp_path, monkeypatch):
    monkeypatch.delenv("DOCKER_HOST", raising=False)  # the local engine's hint (a set DOCKER_HOST gets its own)
    fake = tmp_path / "docker"
    fake.write_text("#!/bin/sh\n"
                    '[ "$1" = version ] && { echo 20.10.24; exit 0; }\n'
                    '[ "$1" = info ] && { echo "Cannot connect to the Docker daemon" >&2; exit 1; }\n'
                    "exit 1\n")
    fake.chmod(0o755)
    p = cli(repo, "build", env={"DOCKER": str(fake)})
    assert p.returncode == 7, p.stderr
    assert "not reachable" in p.stderr and "dockerd" in p.stderr


def test_airflow_change_in_team_set_is_refused_with_file_and_line(repo):
    (repo / "requirements/team.in").write_text("pydantic>=2\napache-airflow==3.4.0\n")
    p = cli(repo, "lock")
    assert p.returncode == 3
    assert p.stderr.startswith("error: requirements/team.in:2: 'apache-airflow==3.4.0' changes apache-airflow")


def test_a_command_imports_only_the_command_module_it_needs():
    # only the module registering the command is imported (not rendering, images or deploys for `lock`)
    code = ("import sys, platformctl.cli as c; c.build_parser(['--set', 'x=1', 'lock']); "
            "print(sorted(m for m in sys.modules if m.startswith('platformctl.commands.')))")
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root).stdout
    from platformctl.cli import _command_word, build_parser

    assert out.strip() == "['platformctl.commands.lock']"
    # a command no module is named after (`history` in deploy, `audit` in supply, the last one): its module only
    for command, module in (("studio-assets", "studio"), ("history", "deploy"), ("audit", "supply")):
        out = subprocess.run([sys.executable, "-c", code.replace("'lock'", repr(command))], capture_output=True,
                             text=True, check=True, cwd=root).stdout
        assert out.strip() == f"['platformctl.commands.{module}']", command

    assert _command_word(["--set", "build", "--traceback", "up"]) == "up"
    assert _command_word(["--help"]) is None
    full = build_parser(["--help"])._subparsers._group_actions[0].choices  # help lists every command
    assert {"lock", "build", "up", "promote"} <= set(full)
    # an unknown word: every module, so that argparse can list the choices
    assert set(build_parser(["no-such-command"])._subparsers._group_actions[0].choices) == set(full)


def test_the_command_table_is_what_the_modules_register():
    """COMMANDS (command -> module) is how a run finds its one module: a command missing from it, or listed
    under the wrong module, would fail to parse."""
    import argparse
    import importlib

    from platformctl.commands import COMMAND_MODULES, COMMANDS

    registered = {}
    for name in COMMAND_MODULES:
        sub = argparse.ArgumentParser().add_subparsers()
        importlib.import_module(f"platformctl.commands.{name}").register(sub)
        registered.update({command: name for command in sub.choices})
    assert COMMANDS == registered


@pytest.mark.parametrize("command", [["build"], ["deploy", "--env", "dev"], ["plan", "--env", "dev"], ["render"],
                                     ["render-check"], ["migrate"]])
def test_every_command_lists_an_invalid_pipelines_problems_once(tmp_path, command):
    """Issue 33, defect 1: build, deploy and plan ended with "1 problem(s)... (fix each line above...)" and no
    line above; the CLI edge prints a PipelineError's problems, once, for every command."""
    for item in ("requirements", "templates", "pipelines", "environments", "dags"):
        shutil.copytree(ROOT / item, tmp_path / item)
    for item in ("platform.yaml", "flavors.yaml"):
        shutil.copy(ROOT / item, tmp_path)
    bad = tmp_path / "pipelines/example_etl.yaml"
    bad.write_text(bad.read_text().replace("resource_flavor: cpu-medium", "resource_flavor: gpu-a10"))
    p = cli(tmp_path, *command, env={"DOCKER": "/nonexistent/docker"})
    assert p.returncode == 11, p.stderr
    line = "error: pipelines/example_etl.yaml:"
    assert p.stderr.count(line) == 1 and "gpu-a10" in p.stderr.split(line)[1].splitlines()[0], p.stderr
    assert p.stderr.strip().splitlines()[-1].startswith("error: 1 problem(s) in 1 pipeline file(s)")
