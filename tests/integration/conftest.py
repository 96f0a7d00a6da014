"""Fixtures shared by the integration tests at this level."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT

SKIP = shutil.ignore_patterns(".git", ".venv", "build", ".cache", ".platform", "__pycache__", ".pytest_cache")


@pytest.fixture
def project_copy(tmp_path: Path) -> Path:
    """The working tree copied into a fresh one-commit git repository (the version comes from git)."""
    repo = tmp_path / "repo"
    shutil.copytree(ROOT, repo, ignore=SKIP)
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "copy"], check=True)
    return repo
