"""Real resolutions against the package index, and the committed locks installed with --require-hashes."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from platformctl.config import load_config
from platformctl.errors import ResolutionError
from platformctl.lock import core
from platformctl.lock.files import read_pins
from platformctl.lock.resolvers import UvResolver, find_interpreter
from tests.conftest import ROOT, require

UV = str(Path(sys.executable).parent / "uv")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    (tmp_path / "requirements").mkdir()
    for f in (ROOT / "requirements").glob("*.in"):
        shutil.copy(f, tmp_path / "requirements")
    shutil.copy(ROOT / "platform.yaml", tmp_path)
    return tmp_path


def test_make_lock_resolves_every_set_for_two_pythons(repo):
    cfg = load_config(repo)
    assert len(cfg.python_versions) >= 2
    results = core.lock_all(repo, cfg, resolver=UvResolver(UV), report=lambda s: None)
    assert all(r.changed for r in results)
    assert core.check_all(repo, cfg) == []
    for py in cfg.python_versions:
        pins = read_pins((repo / "requirements" / core.lock_filename("airflow", py)).read_text())
        assert pins["apache-airflow"] == cfg.airflow_version
        assert "apache-airflow-providers-cncf-kubernetes" in pins
        team = read_pins((repo / "requirements" / core.lock_filename("team", py)).read_text())
        assert all(pins[n] == v for n, v in team.items() if n in pins), "team must follow airflow's pins"
        assert "--hash=sha256:" in (repo / "requirements" / core.lock_filename("team", py)).read_text()


def test_unresolvable_set_names_the_conflict(repo):
    (repo / "requirements/team.in").write_text("pydantic>=2\napache-airflow-providers-docker<3.0\n")
    cfg = load_config(repo).model_copy(update={"python_versions": ["3.11"], "image": load_config(repo).image.model_copy(update={"python": "3.11"})})
    with pytest.raises(ResolutionError) as exc:
        core.lock_all(repo, cfg, resolver=UvResolver(UV), report=lambda s: None)
    assert exc.value.where == "requirements/team.in"
    assert "apache-airflow-providers-docker" in exc.value.message + exc.value.hint


@pytest.mark.parametrize("python", ["3.11", "3.12"])
def test_committed_locks_install_with_require_hashes(python, tmp_path):
    interp = find_interpreter(python)
    require(interp is not None, f"no Python {python} interpreter on this machine")
    venv = tmp_path / "venv"
    subprocess.run([UV, "venv", "-q", "--python", interp, str(venv)], check=True)
    locks = [str(ROOT / "requirements" / core.lock_filename(s, python)) for s in ("airflow", "team")]
    p = subprocess.run([UV, "pip", "sync", "-q", "--python", str(venv / "bin/python"), "--require-hashes", *locks],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr[-2000:]
    out = subprocess.run([str(venv / "bin/python"), "-c", "import airflow; print(airflow.__version__)"],
                         capture_output=True, text=True)
    assert out.stdout.strip() == load_config(ROOT).airflow_version, out.stderr[-2000:]
