"""A real OCI registry on 127.0.0.1: Debian's docker-registry (distribution 2.8) with htpasswd auth,
on a free port, restartable on the same storage (to take it down in the middle of a push)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import requests

from platformctl.stack.compose import free_port
from tests.conftest import require
from tests.integration.helpers import build_from, working_tree_copy

USER, PASSWORD = "ci", "s3cret-" + uuid.uuid4().hex[:8]


class RegistryServer:
    def __init__(self, workdir: Path):
        self.dir = workdir
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None
        htpasswd = subprocess.run(["htpasswd", "-Bbn", USER, PASSWORD], capture_output=True, text=True, check=True)
        (workdir / "htpasswd").write_text(htpasswd.stdout)
        (workdir / "config.yml").write_text(json.dumps({  # YAML is a superset of JSON
            "version": 0.1, "log": {"level": "warn"},
            "storage": {"filesystem": {"rootdirectory": str(workdir / "data")}, "delete": {"enabled": True}},
            "http": {"addr": self.host},
            "auth": {"htpasswd": {"realm": "test", "path": str(workdir / "htpasswd")}},
        }))

    def start(self) -> None:
        log = open(self.dir / "registry.log", "a")
        self.proc = subprocess.Popen(["docker-registry", "serve", str(self.dir / "config.yml")],
                                     stdout=log, stderr=log, start_new_session=True)
        for _ in range(100):
            try:
                if requests.get(f"http://{self.host}/v2/", timeout=1).status_code == 401:
                    return
            except requests.ConnectionError:
                time.sleep(0.1)
        raise RuntimeError(f"registry did not start: {(self.dir / 'registry.log').read_text()[-2000:]}")

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def digest(self, repo: str, tag: str) -> str | None:
        r = requests.head(f"http://{self.host}/v2/{repo}/manifests/{tag}", auth=(USER, PASSWORD), timeout=5,
                          headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json, "
                                             "application/vnd.oci.image.manifest.v1+json"})
        return r.headers.get("Docker-Content-Digest") if r.status_code == 200 else None

    def tags(self, repo: str) -> list[str]:
        r = requests.get(f"http://{self.host}/v2/{repo}/tags/list", auth=(USER, PASSWORD), timeout=5)
        return sorted(r.json().get("tags") or []) if r.status_code == 200 else []


@pytest.fixture(scope="module")
def registry(tmp_path_factory, docker: str):
    require(shutil.which("docker-registry") is not None, "docker-registry not installed (apt-get install docker-registry)")
    require(shutil.which("htpasswd") is not None, "htpasswd not installed (apt-get install apache2-utils)")
    require(shutil.which("skopeo") is not None, "skopeo not installed (apt-get install skopeo)")
    server = RegistryServer(tmp_path_factory.mktemp("registry"))
    server.start()
    yield server
    server.kill()
    # what these tests left in the engine goes with the registry: the tiny images they made (with every tag
    # the tests gave them), and the tags into this registry (only untagged: one may be the image under test)
    rows = [line.split() for line in subprocess.run([docker, "images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"],
                                                    capture_output=True, text=True).stdout.splitlines()]
    tiny = {i for ref, i in rows if ref.startswith("ml-platform-test/tiny:")}
    if tiny:
        subprocess.run([docker, "rmi", "-f", *tiny], capture_output=True)
    ours = [ref for ref, i in rows if ref.startswith(f"{server.host}/") and i not in tiny]
    if ours:
        subprocess.run([docker, "rmi", *ours], capture_output=True)


@pytest.fixture()
def creds_env(registry) -> dict[str, str]:
    return {"REGISTRY_USERNAME": USER, "REGISTRY_PASSWORD": PASSWORD}


def python_base(docker: str) -> str:
    """A Python base image the engine has (make push lists a pushed image's Python environment for its SBOM):
    the configured base (as this machine resolved it), else the locally made one."""
    from platformctl.config import load_config
    from tests.conftest import ROOT

    cfg = load_config(ROOT, {})
    for ref in (cfg.image.resolved_base_image(cfg.airflow_version), "local/python:3.11-slim-bookworm"):
        if subprocess.run([docker, "image", "inspect", ref], capture_output=True).returncode == 0:
            return ref
    require(False, "no Python base image in the engine: run make build")
    return ""


def tiny_image(docker: str, tmp: Path, *, fingerprint: str, size_mb: int = 1) -> str:
    """A small image of random (incompressible) bytes on a Python base, with the platform's lock label: new
    content each time."""
    tag = build_from(docker, tmp / f"ctx-{uuid.uuid4().hex[:6]}",
                     f"FROM {python_base(docker)}\nCOPY blob /blob\nLABEL io.ml-platform.lock.fingerprint={fingerprint}\n",
                     f"ml-platform-test/tiny:{uuid.uuid4().hex[:8]}", {"blob": os.urandom(size_mb * 1024 * 1024)})
    return subprocess.run([docker, "image", "inspect", "--format", "{{.Id}}", tag], check=True,
                          capture_output=True, text=True).stdout.strip()


class Project:
    """A clean clone of the repository at HEAD whose build record points at a chosen local image."""

    def __init__(self, path: Path, registry: RegistryServer, env: dict[str, str]):
        self.path, self.registry = path, registry
        self.repo = f"{registry.host}/ml/airflow"
        self.env = {**os.environ, **env, "REGISTRY": self.repo, "CI": os.environ.get("CI", "")}
        for k in ("PLATFORM_ROOT",):
            self.env.pop(k, None)

    def git(self, *args: str) -> str:
        return subprocess.run(["git", *args], cwd=self.path, check=True, capture_output=True, text=True).stdout.strip()

    def record(self, image_id: str, *, tested: bool = True, fingerprint: str | None = None) -> dict:
        head = self.git("rev-parse", "HEAD")
        fp = fingerprint or self.fingerprint()
        rec = {"image": f"ml-platform-airflow:t-{head[:7]}", "tags": [f"ml-platform-airflow:0.1.0-dev.1-g{head[:7]}"],
               "image_id": image_id, "digest": None, "version": f"0.1.0-dev.1+g{head[:7]}", "revision": head,
               "dirty": False, "created": "2026-01-01T00:00:00Z", "airflow_version": "3.3.2",
               "python_version": "3.12", "base_mode": "python", "base_image": "x", "lock_fingerprint": fp,
               "labels": {}, "build_seconds": 1.0, "tested": tested, "repository": None, "pushed_tags": []}
        (self.path / "build").mkdir(exist_ok=True)
        (self.path / "build" / "build-record.json").write_text(json.dumps(rec, indent=2))
        return rec

    def fingerprint(self) -> str:
        from platformctl.config import load_config
        from platformctl.image.build import image_lock_fingerprint

        return image_lock_fingerprint(self.path, load_config(self.path, {}))

    def run(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "build.py", *args], cwd=self.path, capture_output=True, text=True,
                              env={**self.env, **(env or {})}, timeout=600)

    def commit_file(self, rel: str, text: str, msg: str) -> None:
        (self.path / rel).write_text(text)
        self.git("add", rel)
        self.git("-c", "user.name=t", "-c", "user.email=t@localhost", "commit", "-qm", msg)


@pytest.fixture()
def project(tmp_path, registry, creds_env) -> Project:
    dst = working_tree_copy(tmp_path / "repo")
    p = Project(dst, registry, creds_env)
    # prod pulls from its own repository in the test registry
    prod = (dst / "environments" / "prod.yaml").read_text().replace(
        "127.0.0.1:5000/ml-platform/airflow-prod", f"{registry.host}/ml/airflow-prod")
    p.commit_file("environments/prod.yaml", prod, "test: prod repository in the test registry")
    return p
