"""The local stack over a scratch copy of the project with one demo pipeline: what the tests of Airflow following
deploys (test_airflow_follows.py) and of signed bundles on a running Airflow (test_airflow_trust.py) share.

A module fixture makes one DemoProject (its own folder and compose project) and `up()` starts the stack from the
built image; the tests drive it through the README's commands (`cli`) and read the live version from the
`local` environment's folder store."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import yaml

from platformctl.deploy.deliver import read_pointer
from platformctl.deploy.store import LocalStore
from platformctl.stack.api import AirflowAPI
from platformctl.stack.compose import Stack
from tests.conftest import ROOT

# what `make up` needs of the project; the pipelines are replaced by the demo
PROJECT_FILES = ("pipelines", "templates", "stack", "examples", "flavors.yaml", "platform.yaml", "requirements",
                 "build", "schemas")
STORE = ".platform/bundles/local"  # the local environment's folder store
JOB_IMAGE = "ml-platform/etl-job:0.1.0"


def demo_pipeline(dag: str, jobs: dict[str, dict]) -> str:
    """A version 1 pipeline, unscheduled, its jobs on the example job image."""
    return yaml.safe_dump({"version": 1, "dag": {"name": dag, "schedule": None},
                           "defaults": {"docker_image": JOB_IMAGE, "resource_flavor": "cpu-small"},
                           "jobs": jobs}, sort_keys=False)


class DemoProject:
    def __init__(self, name: str, dag: str, env: dict[str, str | None] | None = None):
        """A copy of the project in a fresh folder under /tmp (not pytest's 0700 tmp dir: the containers' user,
        uid 50000, reads the store folder), a git repository, no pipeline yet. env: set for every command
        (None: removed from it)."""
        self.project = f"mlp-{name}-{uuid.uuid4().hex[:6]}"
        self.dag = dag
        self.env = env or {}
        self.path = Path(tempfile.mkdtemp(prefix=f"mlp-{name}-", dir="/tmp"))
        self.path.chmod(0o755)
        for item in PROJECT_FILES:
            src = ROOT / item
            if src.is_dir():
                shutil.copytree(src, self.path / item, ignore=shutil.ignore_patterns("__pycache__"))
            elif src.exists():
                shutil.copy(src, self.path / item)
        for p in (self.path / "pipelines").glob("*.yaml"):  # only the demo: the stack parses one DAG
            p.unlink()
        (self.path / "dags").mkdir()
        subprocess.run(["git", "init", "-q"], cwd=self.path, check=True)

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)

    def write_pipeline(self, jobs: dict[str, dict]) -> None:
        (self.path / "pipelines" / f"{self.dag}.yaml").write_text(demo_pipeline(self.dag, jobs))

    def cli(self, *args: str, project: bool = False, env: dict[str, str | None] | None = None,
            timeout: int = 900) -> subprocess.CompletedProcess:
        """build.py <args> in the copy (--project: the stack's compose project), output printed for the log;
        env: as the constructor's, for this command."""
        merged = {**os.environ, "PLATFORM_ROOT": str(self.path), **self.env, **(env or {})}
        full = {k: v for k, v in merged.items() if v is not None}
        p = subprocess.run([sys.executable, str(ROOT / "build.py"), *args,
                            *(["--project", self.project] if project else [])],
                           cwd=self.path, env=full, capture_output=True, text=True, timeout=timeout, check=False)
        print(f"$ build.py {' '.join(args)}\n{p.stdout[-3000:]}{p.stderr[-3000:]}")
        return p

    @property
    def stack(self) -> Stack:
        return Stack(self.path, self.project, "stack/compose.yaml")

    def store(self) -> LocalStore:
        return LocalStore(self.path / STORE)

    def live_version(self) -> str:
        return read_pointer(self.store(), "")["version"]

    def logs(self, service: str) -> str:
        return self.stack.compose("logs", "--no-color", service, capture=True, check=False).stdout or ""

    @contextmanager
    def up(self, *args: str, expect: str, keep_logs: tuple[str, ...] = ("dag-processor",)) -> Iterator[AirflowAPI]:
        """make up <args>, its output naming `expect`; the API of the stack; on the way out the logs of
        `keep_logs` beside the folder (for a failure's post-mortem), then make down --volumes."""
        p = self.cli("up", *args, project=True)
        try:
            assert p.returncode == 0, f"make up failed:\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}"
            assert expect in p.stdout, p.stdout[-3000:]
            yield AirflowAPI(self.stack.url, timeout=90)
        finally:
            for service in keep_logs:
                (self.path.parent / f"{self.project}-{service}.log").write_text(self.logs(service))
            d = self.cli("down", "--volumes", project=True)
            assert d.returncode == 0, d.stderr


def wait_bundle(api: AirflowAPI, dag: str, version: str, timeout: float = 180, poll: float = 0.5) -> float:
    """Seconds until Airflow has parsed `dag` from bundle `version`."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        d = api.dag(dag)
        if d and d.get("bundle_version") == version:
            return time.monotonic() - t0
        time.sleep(poll)
    raise AssertionError(f"Airflow did not switch {dag} to bundle {version} within {timeout}s "
                         f"(has {(api.dag(dag) or {}).get('bundle_version')})")
