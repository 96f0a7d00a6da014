"""A studio server on 127.0.0.1 over a copy of the project (pipelines/, flavors, environments, schemas,
templates), so tests edit and save real files without touching the checkout."""

from __future__ import annotations

import shutil
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
