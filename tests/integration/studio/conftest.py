"""A studio server on 127.0.0.1 over a copy of the project (pipelines/, flavors, environments, schemas,
templates), so tests edit and save real files without touching the checkout."""

from __future__ import annotations

import shutil
import subprocess
import threading
from pathlib import Path

import pytest

from platformctl.studio.server import make_server

ROOT = Path(__file__).resolve().parents[3]
COPY = ("pipelines", "environments", "schemas", "templates", "flavors.yaml")


def copy_project(dest: Path) -> Path:
    for name in COPY:
        src = ROOT / name
        (shutil.copytree if src.is_dir() else shutil.copy2)(src, dest / name)
    return dest


def full_copy(dest: Path) -> Path:
    """The checkout's tracked files (a local stack renders, deploys and mounts from here, not from ROOT) and
    the build record of the image under test (FileNotFoundError without one: run make build)."""
    record = ROOT / "build" / "build-record.json"
    if not record.exists():
        raise FileNotFoundError(f"{record} (run make build first)")
    files = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z"], capture_output=True, text=True,
                           check=True).stdout.split("\0")
    for rel in filter(None, files):
        src = ROOT / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    (dest / "build").mkdir(exist_ok=True)
    shutil.copy2(record, dest / "build" / "build-record.json")
    return dest


@pytest.fixture
def project(tmp_path) -> Path:
    return copy_project(tmp_path / "project")


@pytest.fixture
def studio(project):
    httpd, url = make_server(project)
    t = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    yield httpd, url, project
    httpd.shutdown()
    httpd.server_close()
    t.join(5)
