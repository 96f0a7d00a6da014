"""The team lock's layer (python mode): a library the Airflow lock does not pin is installed at its pin,
console script included; changing the team lock reruns neither the Airflow step nor the operators', and
changing the Airflow lock does not reinstall the team's libraries.

The project is copied, tqdm is added to requirements/team.in and locked with the project's own lock
code, and the copy is built twice with make build's code: before the change (warms the build cache
when the image under test was not just built) and after it.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import uuid
from pathlib import Path


from platformctl.config import collect_overrides, load_config
from platformctl.services.build import build_image
from platformctl.lock import core
from platformctl.lock.files import read_pins
from platformctl.lock.resolvers import UvResolver
from tests.conftest import ROOT

UV = str(Path(sys.executable).parent / "uv")


def step_states(log: str) -> dict[str, str]:
    """'stage n/m' -> CACHED or RAN, from BuildKit's plain progress."""
    ids = {m.group(2): m.group(1) for m in re.finditer(r"^#(\d+) \[([\w-]+ \d+/\d+)\]", log, re.M)}
    return {name: "CACHED" if re.search(rf"^#{i} CACHED$", log, re.M) else "RAN" for name, i in ids.items()}


def test_a_team_library_lands_in_its_own_layer(docker, image, project_copy):
    project = project_copy
    cfg = load_config(project, collect_overrides([]))
    cfg = cfg.model_copy(update={"python_versions": [cfg.image.python]})
    py = cfg.image.python
    tags = []
    try:
        build_image(project, cfg, run_tests=False, echo=False, reuse=False)
        tags += json.loads((project / "build" / "build-record.json").read_text())["tags"]

        team_in = project / "requirements" / "team.in"
        team_in.write_text(team_in.read_text() + "tqdm>=4.66\n")
        core.lock_all(project, cfg, resolver=UvResolver(UV), report=lambda s: None)
        airflow_pins = read_pins((project / "requirements" / core.lock_filename("airflow", py)).read_text())
        team_pins = read_pins((project / "requirements" / core.lock_filename("team", py)).read_text())
        assert "tqdm" not in airflow_pins and "tqdm" in team_pins
        assert airflow_pins == read_pins((ROOT / "requirements" / core.lock_filename("airflow", py)).read_text())

        record = build_image(project, cfg, run_tests=False, echo=False, reuse=False)
        tags += record.tags
        states = step_states((project / "build" / "build.log").read_text())
        assert "team-python 3/3" in states  # the install (2/3 copies the lock difference): ran, or cached from an earlier run of this test
        # Airflow not reinstalled (2/3: the lock; 3/3: its bytecode)
        assert states["python-deps 2/3"] == states["python-deps 3/3"] == "CACHED", states
        assert states["operators-python 2/2"] == "CACHED", states

        def run(*args: str) -> subprocess.CompletedProcess:
            return subprocess.run([docker, "run", "--rm", record.image_id, *args], capture_output=True, text=True)

        assert run("python", "-c", "import tqdm; print(tqdm.__version__)").stdout.strip() == team_pins["tqdm"]
        script = run("bash", "-c", "command -v tqdm; tqdm --version")  # its shebang is the image's venv
        assert script.returncode == 0, script.stderr
        assert script.stdout.split() == ["/opt/venv/bin/tqdm", team_pins["tqdm"]]
        assert run("python", "-c", "import airflow, ml_platform; print(airflow.__version__)").stdout.strip() \
            == cfg.airflow_version
        check = subprocess.run([docker, "run", "--rm", "-v", f"{UV}:/uv:ro", "--entrypoint", "/uv", record.image_id,
                                "pip", "check", "--python", "/opt/venv/bin/python"], capture_output=True, text=True)
        assert check.returncode == 0, check.stdout + check.stderr

        # The other way round: an Airflow lock change (new inputs, unique to this run, same pins) reinstalls
        # Airflow and recomputes the team's difference, which is unchanged: the team's libraries stay cached.
        airflow_in = project / "requirements" / "airflow.in"
        airflow_in.write_text(airflow_in.read_text() + f"# test run {uuid.uuid4().hex}\n")
        airflow_lock = project / "requirements" / core.lock_filename("airflow", py)
        before = airflow_lock.read_text()
        core.lock_all(project, cfg, resolver=UvResolver(UV), report=lambda s: None)
        assert airflow_lock.read_text() != before and read_pins(airflow_lock.read_text()) == airflow_pins
        assert read_pins((project / "requirements" / core.lock_filename("team", py)).read_text()) == team_pins
        record = build_image(project, cfg, run_tests=False, echo=False, reuse=False)
        tags += record.tags
        states = step_states((project / "build" / "build.log").read_text())
        assert states["python-deps 2/3"] == states["python-deps 3/3"] == "RAN", states
        assert states["team-lock 2/2"] == "RAN", states
        assert states["team-python 3/3"] == "CACHED", states
        assert states["operators-python 2/2"] == "CACHED", states
        assert run("python", "-c", "import tqdm, airflow; print(tqdm.__version__)").stdout.strip() == team_pins["tqdm"]
    finally:
        if tags:
            subprocess.run([docker, "rmi", "-f", *set(tags)], capture_output=True)
