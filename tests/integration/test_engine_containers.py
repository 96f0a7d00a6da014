"""The engine's container interface against the real Docker engine: a run to completion with stdin and no
network, a detached start whose handle reads logs, waits, stops and removes (the calls the image checks,
make plan's pod builder and the stack make through platformctl.engine). One small base image, ~5 s."""

from __future__ import annotations

import uuid

import pytest

from platformctl.engine import DockerEngine
from tests.conftest import base_image

LABEL = {"io.ml-platform.test": "engine-containers"}


@pytest.fixture(scope="module")
def engine(docker) -> DockerEngine:
    return DockerEngine.connect(docker)


@pytest.fixture(scope="module")
def image(engine) -> str:
    ref = base_image()
    assert engine.image_id(ref), f"{ref} is not in the engine: make build makes it"
    return ref


def test_run_to_completion_with_stdin_and_no_network(engine, image):
    code = ("import sys, socket, os; data = sys.stdin.read(); "
            "print(data.upper(), os.environ['K'], [n for _, n in socket.if_nameindex()])")
    p = engine.run(image, ["python3", "-c", code], input="hello", network="none", env={"K": "v"}, labels=LABEL,
                   timeout=120)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "HELLO v ['lo']"  # only the loopback interface: no network


def test_detached_start_logs_wait_and_remove(engine, image):
    name = f"platform-engine-test-{uuid.uuid4().hex[:8]}"
    c = engine.start(image, ["python3", "-c", "print('ready', flush=True); import sys; sys.exit(3)"], name=name,
                     labels=LABEL, remove=False)
    try:
        assert c.wait(timeout=120) == 3
        assert c.status() == "exited" and c.exit_code() == 3 and not c.running()
        assert c.logs().strip() == "ready"
        assert engine.container(name).inspect()["Config"]["Labels"]["io.ml-platform.test"] == "engine-containers"
    finally:
        c.remove()
    assert c.status() is None and c.logs() == ""


def test_stop_a_running_container_and_exec_in_it(engine, image):
    with engine.start(image, ["sleep", "300"], labels=LABEL) as c:
        assert c.running()
        assert c.exec(["cat"], input="inside").stdout == "inside"
        c.stop(timeout=1)
        assert not c.running()
    assert c.status() is None  # started with remove (--rm) and removed on leaving the block
