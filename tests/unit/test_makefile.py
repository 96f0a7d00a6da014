"""The Makefile (issue 33, defect 3): every target is a command, so every target is .PHONY; a folder named
like a target (studio/) never makes make answer "is up to date" instead of running it."""

from __future__ import annotations

import re
import shutil
import subprocess

from tests.conftest import ROOT

TARGET = re.compile(r"^([A-Za-z0-9][A-Za-z0-9_-]*)\s*:(?!=)")  # `name:` rules, not `NAME := value`


def targets_and_phony(text: str) -> tuple[set[str], set[str]]:
    targets, phony = set(), set()
    for line in text.splitlines():
        if line.startswith(".PHONY:"):
            phony.update(line.split(":", 1)[1].split())
        elif m := TARGET.match(line):
            targets.add(m.group(1))
    return targets, phony


def test_every_makefile_target_is_phony():
    targets, phony = targets_and_phony((ROOT / "Makefile").read_text())
    assert {"build", "studio", "gc", "bench-render"} <= targets
    assert sorted(targets - phony) == []


def test_the_parser_sees_a_missing_phony():
    targets, phony = targets_and_phony(".PHONY: a\na: x ## y\n\tcmd\nb:\n\tcmd\nV := 1\n$(VENV)/.synced: z\n")
    assert targets == {"a", "b"} and targets - phony == {"b"}


def test_make_studio_runs_when_a_studio_folder_is_newer(tmp_path):
    """A copy of the Makefile with its venv stamp in place and a studio/ folder newer than it: make plans the
    studio command instead of answering "'studio' is up to date"."""
    shutil.copy(ROOT / "Makefile", tmp_path)
    (tmp_path / "operators").mkdir()
    (tmp_path / "operators/pyproject.toml").write_text("")
    (tmp_path / ".venv/bin").mkdir(parents=True)
    (tmp_path / ".venv/.synced").write_text("")
    (tmp_path / "studio").mkdir()
    (tmp_path / "studio/package.json").write_text("{}")  # npm ci: the folder is newer than .venv/.synced
    import os
    import time

    earlier = time.time() - 60
    for stamp in (".venv/.synced", "operators/pyproject.toml", "Makefile"):
        os.utime(tmp_path / stamp, (earlier, earlier))
    p = subprocess.run(["make", "-n", "studio"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert "up to date" not in p.stdout + p.stderr
    assert "build.py studio" in p.stdout, p.stdout + p.stderr
