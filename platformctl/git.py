"""The one place the build side runs git (pre-commit's git.py shape): small functions over `git -C root`."""

from __future__ import annotations

import subprocess
from pathlib import Path

from .errors import PlatformError


def run(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True)


def output(root: Path, *args: str) -> str | None:
    """git's stripped stdout, or None when the command failed (not a repository, unknown revision...)."""
    p = run(root, *args)
    return p.stdout.strip() if p.returncode == 0 else None


def check(root: Path, *args: str) -> str:
    """git's stripped stdout; a failure is a PlatformError naming the command and git's message."""
    p = run(root, *args)
    if p.returncode != 0:
        raise PlatformError(f"git {' '.join(args)} failed: {p.stderr.strip()}")
    return p.stdout.strip()


def head(root: Path) -> str | None:
    return output(root, "rev-parse", "HEAD")


def is_ancestor(root: Path, revision: str, of: str = "HEAD") -> bool:
    return run(root, "merge-base", "--is-ancestor", revision, of).returncode == 0


def dirty(root: Path) -> bool:
    """Tracked files changed (untracked files do not make a build dirty)."""
    return bool(output(root, "status", "--porcelain", "--untracked-files=no"))
