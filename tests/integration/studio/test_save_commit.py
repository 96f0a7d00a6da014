"""Save shows its diffs before writing (issue 40), against a real studio server."""

from __future__ import annotations

import os
import subprocess
from unittest import mock

import pytest

from .test_api import Client, snapshot

F = "pipelines/example_etl.yaml"


@pytest.fixture
def client(studio):
    return Client(studio[1])


def test_diff_shows_yaml_and_rendered_dag_and_writes_nothing(client, studio):
    project = studio[2]
    before = snapshot(project)
    client.api("edit", {"file": F, "op": {"op": "set", "path": ["jobs", "train", "resource_flavor"],
                                          "value": "cpu-large"}})
    status, d = client.api("diff", {"file": F})
    assert status == 200 and d["valid"] and not d["new"]
    assert "--- a/pipelines/example_etl.yaml\n+++ b/pipelines/example_etl.yaml\n" in d["yaml_diff"]
    assert "-    resource_flavor: cpu-medium\n+    resource_flavor: cpu-large\n" in d["yaml_diff"]
    assert d["dag_file"] == "dags/example_etl.py"
    assert "+++ b/dags/example_etl.py" in d["dag_diff"]
    changed = [line for line in d["dag_diff"].splitlines() if line[:1] in "+-" and line[:3] not in ("+++", "---")]
    assert changed and any("cpu-large" in line for line in changed if line.startswith("+"))
    assert any("cpu-medium" in line for line in changed if line.startswith("-"))
    assert snapshot(project) == before  # a diff writes nothing


def test_save_refuses_a_confirmation_for_another_text(client, studio):
    project = studio[2]
    original = (project / F).read_bytes()
    client.api("edit", {"file": F, "op": {"op": "set", "path": ["jobs", "train", "retries"], "value": 3}})
    shown = client.api("diff", {"file": F})[1]["text_sha"]
    client.api("edit", {"file": F, "op": {"op": "set", "path": ["jobs", "train", "retries"], "value": 4}})
    status, data = client.api("save", {"file": F, "text_sha": shown})
    assert status == 409 and "changed since its diff was shown" in data["error"] and data["stale_diff"]
    assert (project / F).read_bytes() == original
    status, d = client.api("diff", {"file": F})
    assert "+    retries: 4" in d["yaml_diff"]
    status, s = client.api("save", {"file": F, "text_sha": d["text_sha"]})
    assert status == 200 and not s["dirty"] and b"retries: 4" in (project / F).read_bytes()
    assert client.api("diff", {"file": F})[1]["yaml_diff"] == ""  # saved: nothing left to write


def test_diff_of_a_new_pipeline_and_of_an_invalid_one(client):
    status, _ = client.api("new", {"name": "fresh"})
    status, d = client.api("diff", {"file": "pipelines/fresh.yaml"})
    assert status == 200 and d["new"] and d["yaml_diff"].startswith("--- /dev/null\n+++ b/pipelines/fresh.yaml\n")
    client.api("edit", {"file": F, "op": {"op": "set", "path": ["jobs", "train", "resource_flavor"], "value": "gpu-a10"}})
    status, d = client.api("diff", {"file": F})
    assert status == 200 and not d["valid"] and d["dag_file"] is None
    assert any("gpu-a10" in p for p in d["dag_problems"])
    assert d["dag_diff"].startswith("--- a/dags/example_etl.py\n+++ /dev/null")  # the DAG would stop rendering


# -- commit on a branch (real git in a temporary checkout) ------------------------------------------------
def git(project, *args, check=True) -> str:
    p = subprocess.run(["git", "-C", str(project), *args], capture_output=True, text=True, check=False)
    if check:
        assert p.returncode == 0, p.stderr
    return p.stdout.strip("\n")


@pytest.fixture
def repo(studio):
    """The studio's project copy as a git checkout on main, with one commit and a configured author."""
    project = studio[2]
    git(project, "init", "-q", "-b", "main")
    git(project, "config", "user.name", "Ada Lovelace")
    git(project, "config", "user.email", "ada@example.invalid")
    git(project, "config", "commit.gpgsign", "false")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "start")
    return project


def edit_train(client, value="cpu-large"):
    client.api("edit", {"file": F, "op": {"op": "set", "path": ["jobs", "train", "resource_flavor"], "value": value}})
    return client.api("diff", {"file": F})[1]["text_sha"]


def test_commit_on_a_new_branch_leaves_everything_else_untouched(client, repo):
    start = git(repo, "rev-parse", "HEAD")
    (repo / "flavors.yaml").write_text((repo / "flavors.yaml").read_text() + "# local note\n")  # dirty, unstaged
    (repo / "environments" / "scratch.txt").write_text("untracked\n")
    other = repo / "pipelines" / "example_failing.yaml"
    other.write_text(other.read_text() + "# staged elsewhere\n")
    git(repo, "add", "pipelines/example_failing.yaml")
    sha = edit_train(client)
    status, s = client.api("commit", {"file": F, "text_sha": sha, "branch": "studio/bigger-train",
                                      "message": "train on cpu-large"})
    assert status == 200, s
    c = s["committed"]
    assert c["branch"] == "studio/bigger-train" and c["created"] and not s["dirty"]
    assert set(c["untouched_outside_pipelines"]) == {"flavors.yaml", "environments/scratch.txt"}
    assert "pipelines/example_failing.yaml" in c["untouched"]
    assert git(repo, "symbolic-ref", "--short", "HEAD") == "studio/bigger-train"
    assert git(repo, "rev-parse", "HEAD") == c["commit"]
    assert git(repo, "rev-parse", "HEAD~1") == start and git(repo, "rev-parse", "main") == start  # main untouched
    assert git(repo, "log", "-1", "--format=%an <%ae>|%s") == "Ada Lovelace <ada@example.invalid>|train on cpu-large"
    assert git(repo, "show", "--name-only", "--format=", "HEAD").splitlines() == [F]  # that file alone
    assert "resource_flavor: cpu-large" in git(repo, "show", f"HEAD:{F}")
    # the other changes are exactly as they were: unstaged, untracked and staged
    status_lines = git(repo, "status", "--porcelain").splitlines()
    assert " M flavors.yaml" in status_lines and "?? environments/scratch.txt" in status_lines
    assert "M  pipelines/example_failing.yaml" in status_lines
    assert not git(repo, "remote")  # nothing to push to, and nothing pushed


@pytest.mark.parametrize("branch", ["bad..name", "ends.lock", "has space", "-dash", "a~b", ""])
def test_a_branch_name_git_refuses_is_one_line(client, repo, branch):
    original = (repo / F).read_bytes()
    sha = edit_train(client)
    status, data = client.api("commit", {"file": F, "text_sha": sha, "branch": branch, "message": "m"})
    assert status == 400 and "\n" not in data["error"]
    assert "is not a branch name git accepts" in data["error"] or "may not be empty" in data["error"]
    assert (repo / F).read_bytes() == original and git(repo, "symbolic-ref", "--short", "HEAD") == "main"
    assert git(repo, "branch", "--format=%(refname:short)").splitlines() == ["main"]


def test_default_branch_only_when_asked(client, repo):
    sha = edit_train(client)
    status, data = client.api("commit", {"file": F, "text_sha": sha, "branch": "main", "message": "m"})
    assert status == 400 and "default branch" in data["error"]
    assert git(repo, "rev-list", "--count", "HEAD") == "1"
    status, s = client.api("commit", {"file": F, "text_sha": sha, "branch": "main", "message": "on main",
                                      "allow_default": True})
    assert status == 200 and not s["committed"]["created"]
    assert git(repo, "rev-list", "--count", "main") == "2" and git(repo, "status", "--porcelain") == ""


def test_commit_refusals_write_nothing(client, repo):
    original = (repo / F).read_bytes()
    sha = edit_train(client)
    git(repo, "branch", "taken")
    for body, words in [({"branch": "taken", "message": "m"}, "already exists"),
                        ({"branch": "fresh", "message": "  "}, "message is empty")]:
        status, data = client.api("commit", {"file": F, "text_sha": sha, **body})
        assert status == 400 and words in data["error"], data
    git(repo, "config", "--unset", "user.email")
    env_home = {"HOME": str(repo), "XDG_CONFIG_HOME": str(repo)}  # no global identity leaks in
    with mock.patch.dict(os.environ, {**env_home, "GIT_CONFIG_NOSYSTEM": "1"}):
        status, data = client.api("commit", {"file": F, "text_sha": sha, "branch": "fresh", "message": "m"})
    assert status == 400 and "user.email" in data["error"]
    assert (repo / F).read_bytes() == original and git(repo, "symbolic-ref", "--short", "HEAD") == "main"
    assert "fresh" not in git(repo, "branch")


def test_commit_when_the_file_changed_on_disk_is_the_conflict_check(client, repo):
    sha = edit_train(client)
    (repo / F).write_text((repo / F).read_text() + "# changed by someone else\n")
    status, data = client.api("commit", {"file": F, "text_sha": sha, "branch": "fresh", "message": "m"})
    assert status == 409 and data["conflict"] and "changed on disk since it was opened" in data["error"]
    assert (repo / F).read_text().endswith("# changed by someone else\n")
    assert "fresh" not in git(repo, "branch") and git(repo, "rev-list", "--count", "--all") == "1"


def test_a_failing_hook_switches_back_and_drops_the_branch(client, repo):
    hook = repo / ".git" / "hooks" / "pre-commit"
    hook.write_text("#!/bin/sh\necho 'refused by hook' >&2\nexit 1\n")
    hook.chmod(0o755)
    sha = edit_train(client)
    status, data = client.api("commit", {"file": F, "text_sha": sha, "branch": "fresh", "message": "m"})
    assert status == 400 and "git commit failed" in data["error"] and "refused by hook" in data["error"]
    assert git(repo, "symbolic-ref", "--short", "HEAD") == "main" and "fresh" not in git(repo, "branch")
    assert git(repo, "rev-list", "--count", "--all") == "1"


def test_commit_outside_git_says_so(client, studio):
    sha = edit_train(client)
    status, data = client.api("commit", {"file": F, "text_sha": sha, "branch": "fresh", "message": "m"})
    assert status == 400 and "not a git checkout" in data["error"]


# -- run: refusals before anything is deployed ------------------------------------------------------------
def test_run_refuses_an_invalid_or_unsaved_pipeline_and_deploys_nothing(client, studio):
    project = studio[2]
    before = snapshot(project)
    client.api("edit", {"file": F, "op": {"op": "set", "path": ["jobs", "train", "resource_flavor"], "value": "gpu-a10"}})
    status, data = client.api("run-start", {"file": F})
    assert status == 422 and "nothing was deployed" in data["error"] and "gpu-a10" in data["error"]
    client.api("edit", {"file": F, "op": {"op": "set", "path": ["jobs", "train", "resource_flavor"], "value": "cpu-large"}})
    status, data = client.api("run-start", {"file": F})
    assert status == 409 and "save it first" in data["error"]
    assert snapshot(project) == before  # nothing rendered, nothing deployed
    status, st = client.api("run-status", {"file": F})  # never started here: no stack, no run, nothing live
    assert status == 200 and st == {"stage": None, "run_id": None, "jobs": {}, "progress": [], "live": False}
