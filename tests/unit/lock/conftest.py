from __future__ import annotations

import threading
from pathlib import Path

import pytest

from platformctl.config import PlatformConfig
from platformctl.lock.resolvers import ResolveRequest


class FakeResolver:
    """Writes pins from a table instead of resolving: unit tests never shell out."""

    name = "fake"

    def __init__(self, pins: dict[str, dict[str, str]]):
        self.pins = pins  # set name -> {package: version}
        self.calls: list[ResolveRequest] = []
        self.constraints: list[dict[str, str]] = []
        self.preferences: list[str] = []
        self._lock = threading.Lock()

    def version(self) -> str:
        return "0"

    def compile(self, req: ResolveRequest) -> None:
        # the work dir is temporary: keep what the resolver was given, at call time. make lock resolves
        # the Python versions in parallel: the three lists are appended together, so index i is one call
        constraints = {c.name: c.read_text() for c in req.constraints}
        preference = req.out_file.read_text() if req.out_file.exists() else ""
        with self._lock:
            self.calls.append(req)
            self.constraints.append(constraints)
            self.preferences.append(preference)
        set_name = Path(req.in_file).stem
        body = "".join(f"{n}=={v} \\\n    --hash=sha256:{'0' * 64}\n    # via -r {req.in_file}\n"
                       for n, v in sorted(self.pins[set_name].items()))
        req.out_file.write_text(body)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    (tmp_path / "requirements").mkdir()
    (tmp_path / "requirements/airflow.in").write_text("apache-airflow==3.3.2\napache-airflow-providers-docker\n")
    (tmp_path / "requirements/team.in").write_text("pydantic>=2\n")
    (tmp_path / "requirements/dev.in").write_text("pytest\n")
    return tmp_path


@pytest.fixture
def cfg() -> PlatformConfig:
    return PlatformConfig(python_versions=["3.12", "3.11"], image={"python": "3.12"},
                          lock_sets={"airflow": [], "team": ["airflow"], "dev": ["airflow", "team"]})


@pytest.fixture
def fake() -> FakeResolver:
    return FakeResolver({
        "airflow": {"apache-airflow": "3.3.2", "apache-airflow-providers-docker": "4.6.1", "pydantic": "2.14.4"},
        "team": {"pydantic": "2.14.4"},
        "dev": {"pytest": "9.2.0"},
    })
