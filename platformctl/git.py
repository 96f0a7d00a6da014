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


def toplevel(root: Path) -> Path | None:
    """The checkout's top directory, or None when root is not inside a git working tree."""
    top = output(root, "rev-parse", "--show-toplevel")
    return Path(top) if top else None


def current_branch(root: Path) -> str | None:
    """The checked-out branch's short name; None on a detached HEAD."""
    return output(root, "symbolic-ref", "--short", "-q", "HEAD")


def branch_exists(root: Path, name: str) -> bool:
    return run(root, "rev-parse", "--verify", "-q", f"refs/heads/{name}").returncode == 0


def refuses_branch_name(root: Path, name: str) -> str | None:
    """Why git refuses `name` as a branch name (`git check-ref-format --branch`), or None when it accepts it."""
    if not name or name.startswith("-"):
        return "a branch name may not be empty or start with '-'"
    p = run(root, "check-ref-format", "--branch", name)
    return None if p.returncode == 0 else (p.stderr.strip() or "git check-ref-format refused it")


def default_branches(root: Path) -> set[str]:
    """The repository's default branch: origin's HEAD when known, else init.defaultBranch, plus main/master."""
    names = {"main", "master"}
    origin = output(root, "symbolic-ref", "--short", "-q", "refs/remotes/origin/HEAD")
    if origin:
        names.add(origin.split("/", 1)[1] if "/" in origin else origin)
    configured = output(root, "config", "init.defaultBranch")
    if configured:
        names.add(configured)
    return names


def changed_paths(root: Path) -> list[str]:
    """Paths (relative to the top) with changes in the index or the working tree, untracked ones included."""
    p = run(root, "status", "--porcelain=v1", "-z", "--untracked-files=all")
    if p.returncode != 0:
        return []
    out, entries = [], p.stdout.split("\0")
    i = 0
    while i < len(entries):
        e = entries[i]
        if len(e) > 3:
            out.append(e[3:])
            if e[0] in "RC":  # a rename's source follows as its own entry
                i += 1
        i += 1
    return out


def show(root: Path, revision: str, path: str) -> str | None:
    """A file's text at a revision (None when it is not there)."""
    p = run(root, "show", f"{revision}:{path}")
    return p.stdout if p.returncode == 0 else None
