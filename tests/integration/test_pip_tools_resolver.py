"""pip-tools, the alternative resolver, gives the same pins as uv for a layered set on the host Python."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path


from platformctl.config import collect_overrides, load_config
from platformctl.lock import core
from platformctl.lock.files import read_pins
from platformctl.lock.resolvers import PipToolsResolver
from tests.conftest import ROOT

HOST = "%d.%d" % sys.version_info[:2]


def test_pip_tools_pins_match_uv_for_the_team_layer(tmp_path: Path):
    repo = tmp_path / "repo"
    (repo / "requirements").mkdir(parents=True)
    for name in ("airflow", "team"):
        shutil.copy(ROOT / f"requirements/{name}.in", repo / "requirements")
        shutil.copy(ROOT / f"requirements/{core.lock_filename(name, HOST)}", repo / "requirements")
    shutil.copy(ROOT / "platform.yaml", repo)
    cfg = load_config(repo, collect_overrides([f"image.python={HOST}"], {"PYTHONS": HOST}))
    cfg = cfg.model_copy(update={"lock_sets": {"airflow": [], "team": ["airflow"]}})
    uv_pins = read_pins((repo / f"requirements/{core.lock_filename('team', HOST)}").read_text())
    (repo / f"requirements/{core.lock_filename('team', HOST)}").unlink()  # resolve from scratch

    dev = read_pins((ROOT / f"requirements/{core.lock_filename('dev', HOST)}").read_text())
    resolver = PipToolsResolver(tmp_path / "cache", f"pip-tools=={dev['pip-tools']}", f"pip=={dev['pip']}")
    t = core.LockTarget("team", HOST, ("airflow",))
    r = core.lock_target(repo, cfg.model_copy(update={"resolver": "pip-tools"}), t, resolver, tmp_path)
    assert r.changed
    text = (repo / f"requirements/{core.lock_filename('team', HOST)}").read_text()
    assert "resolver: pip-tools" in text and "--hash=sha256:" in text
    assert read_pins(text) == uv_pins
