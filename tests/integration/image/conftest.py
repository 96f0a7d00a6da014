"""The image under test, probed by the product's checks (platformctl/image/checks): one container start
per group, started together at the first test that needs one, with the API server booting alongside."""

from __future__ import annotations

import json
import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest

from platformctl.engine import DockerEngine
from platformctl.image import checks


@pytest.fixture(scope="package")
def started(docker: str, image: str, root):
    """The deps and code probes and the API server, all started at once (the suite waits for the slowest);
    stopped when the image tests are done, not at the end of the session (an idle API server takes CPU from
    every later test)."""
    engine = DockerEngine.connect(docker)
    pool = ThreadPoolExecutor(max_workers=2)
    deps = pool.submit(checks.probe_deps, engine, image)
    code = pool.submit(checks.probe_code, engine, image, root / "examples" / "dags")
    with checks.ApiServer(engine, image) as api:  # no DB cache: migrated afresh, as a new instance would
        yield {"deps": deps, "code": code, "api": api}
    pool.shutdown(wait=True)


def _facts(future, group: str) -> dict:
    facts = future.result()
    errors = facts.get("errors", {})
    assert not errors, f"the {group} probe could not gather: {errors}"
    return facts[group]


@pytest.fixture(scope="package")
def deps_facts(started) -> dict:
    """What the dependency layers hold (probe run as root, uv mounted)."""
    return _facts(started["deps"], "deps")


@pytest.fixture(scope="package")
def code_facts(started) -> dict:
    """What the code layers do, Airflow imported once (probe run as the image's user)."""
    return _facts(started["code"], "code")


@pytest.fixture(scope="package")
def labels(docker: str, image: str) -> dict[str, str]:
    out = subprocess.run([docker, "image", "inspect", image, "--format", "{{json .Config.Labels}}"],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out)
