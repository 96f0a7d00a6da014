"""Commit one pipeline file on a branch the user names (issue 40): plain git, never a push.

The branch is created from the current HEAD with `git switch -c` (which never touches the working tree:
the new branch starts where HEAD is, so every other change, staged or not, stays as it was), the file is
written, and `git commit --only <file>` records that file alone (other staged changes stay staged, not
committed). The author is git's own (user.name / user.email). The default branch is refused unless asked.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .. import git
from ..errors import StudioError


@dataclass(frozen=True)
class CommitPlan:
    top: Path
    path: str  # the file, relative to the checkout's top
    branch: str
    create: bool  # False: the branch is the checked-out one
    previous: str | None  # the branch checked out before (None: detached HEAD)
    untouched: list[str] = field(default_factory=list)  # other changed paths, left as they are


@dataclass(frozen=True)
class CommitResult:
    branch: str
    commit: str
    created: bool
    untouched: list[str]


def plan(root: Path, file: Path, text: str, branch: str, message: str, *, allow_default: bool = False) -> CommitPlan:
    """Every check that can refuse, before anything is changed."""
    top = git.toplevel(root)
    if top is None:
        raise StudioError(f"{root} is not a git checkout", "commit needs the project in git; Save still works")
    if not isinstance(message, str) or not message.strip():
        raise StudioError("the commit message is empty", "write what the change does")
    if not isinstance(branch, str):
        raise StudioError("no branch name given", "name the branch to commit on")
    why = git.refuses_branch_name(top, branch)
    if why:
        raise StudioError(f"'{branch}' is not a branch name git accepts: {why.splitlines()[0]}",
                          "use letters, digits, '-', '_' and '/' (git check-ref-format)")
    if branch in git.default_branches(top) and not allow_default:
        raise StudioError(f"'{branch}' is the default branch: the studio does not commit there unless asked",
                          "name a new branch, or tick 'commit on the default branch'")
    for key in ("user.name", "user.email"):
        if not git.output(top, "config", key):
            raise StudioError(f"git has no {key} configured: nothing was committed",
                              f"git config --global {key} '...'")
    current = git.current_branch(top)
    create = branch != current
    if create and git.branch_exists(top, branch):
        raise StudioError(f"branch '{branch}' already exists and is not checked out: nothing was committed",
                          "name a new branch (the studio creates it from the current HEAD) or check it out first")
    path = file.resolve().relative_to(top.resolve()).as_posix()
    if git.show(top, "HEAD", path) == text:
        raise StudioError(f"{path} is the same as in HEAD: nothing to commit", "edit it first")
    untouched = [p for p in git.changed_paths(top) if p != path]
    return CommitPlan(top, path, branch, create, current, untouched)


def commit(p: CommitPlan, message: str, write: Callable[[], None]) -> CommitResult:
    """Switch to (or create) the branch, write the file with `write`, commit that file alone. A failure after
    the switch (a hook refusing, ...) switches back and deletes the branch it created; the file stays written."""
    if p.create:
        git.check(p.top, "switch", "-c", p.branch)
    try:
        write()
        git.check(p.top, "add", "--", p.path)
        git.check(p.top, "commit", "--only", "-q", "-m", message, "--", p.path)
    except Exception as exc:
        if p.create:
            back = ("switch", p.previous) if p.previous else ("switch", "--detach", "HEAD@{1}")
            if git.run(p.top, *back).returncode == 0:
                git.run(p.top, "branch", "-D", p.branch)
        if isinstance(exc, StudioError):
            raise
        raise StudioError(f"git commit failed: {exc}", "nothing was committed; the file is written") from None
    return CommitResult(p.branch, git.check(p.top, "rev-parse", "HEAD"), p.create, p.untouched)


__all__ = ["CommitPlan", "CommitResult", "commit", "plan"]
