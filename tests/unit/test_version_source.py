"""org.opencontainers.image.source from git's remote, when image.source is not set."""

from __future__ import annotations

import subprocess

import pytest

from platformctl.version import source_url


@pytest.mark.parametrize("remote, url", [
    ("git@git.example.invalid:ml/platform.git", "https://git.example.invalid/ml/platform"),
    ("https://ci-bot:s3cr3t-token@git.example.invalid/ml/platform.git", "https://git.example.invalid/ml/platform"),
    ("ssh://git@git.example.invalid:2222/ml/platform.git", "https://git.example.invalid/ml/platform"),
    ("http://git.example.invalid:8080/ml/platform/", "http://git.example.invalid:8080/ml/platform"),
    ("/srv/git/platform.git", ""),
    ("file:///srv/git/platform.git", ""),
    ("../platform", ""),
])
def test_remote_origin_becomes_a_credential_free_url(tmp_path, remote, url):
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    subprocess.run(["git", "-C", str(tmp_path), "remote", "add", "origin", remote], check=True)
    assert source_url(tmp_path) == url


def test_no_remote_no_source(tmp_path):
    assert source_url(tmp_path) == ""  # not even a repository
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    assert source_url(tmp_path) == ""


def test_configured_source_wins_and_the_remote_is_the_default(monkeypatch):
    import platformctl.image.build as build
    from platformctl.config import collect_overrides, load_config
    from tests.conftest import ROOT

    class Engine:
        mode = "docker-buildkit"

    monkeypatch.setattr(build, "source_url", lambda root: "https://git.example.invalid/from/remote")
    cfg = load_config(ROOT, collect_overrides(["image.source=https://code.example.invalid/ml/platform"], {}))
    assert build.build_spec(ROOT, cfg, Engine())[0].build_args["SOURCE"] == "https://code.example.invalid/ml/platform"
    cfg = load_config(ROOT, collect_overrides(["image.source="], {}))
    assert build.build_spec(ROOT, cfg, Engine())[0].build_args["SOURCE"] == "https://git.example.invalid/from/remote"


def test_a_remote_not_called_origin_is_the_default(tmp_path):
    """Issue 33, defect 6: the label was empty for a clone whose remote is not `origin` (the only remote,
    or the current branch's upstream remote), credentials stripped."""
    def git(*args):
        subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True)

    git("init", "-q", "-b", "main")
    git("remote", "add", "upstream", "https://bot:t0ken@git.example.invalid/ml/platform.git")
    assert source_url(tmp_path) == "https://git.example.invalid/ml/platform"
    git("remote", "add", "fork", "git@git.example.invalid:me/platform.git")
    assert source_url(tmp_path) == ""  # two remotes, none tracked: no guess
    git("config", "branch.main.remote", "fork")
    assert source_url(tmp_path) == "https://git.example.invalid/me/platform"
