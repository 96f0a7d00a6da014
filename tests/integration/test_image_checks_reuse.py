"""make build's image checks follow what changed: a plugin edit re-runs the code and API checks but not the
dependency checks (their layers are unchanged); one more package in the team lock changes a dependency
layer, so the dependency checks run again. The record is keyed by content: a pass on other layers is
never taken for this image.

The project is copied and built with make build's code three times (the first build is cached when the
image under test was just built from the same tree)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


from platformctl.config import collect_overrides, load_config
from platformctl.services.build import build_image
from platformctl.record import BuildRecord
from platformctl.lock import core
from platformctl.lock.resolvers import UvResolver

UV = str(Path(sys.executable).parent / "uv")


def groups(record) -> dict[str, float | None]:
    return {k.removeprefix("test "): v for k, v in record.timings.items() if k.startswith("test ")}


def test_dependency_checks_rerun_on_a_lock_change_not_on_a_plugin_edit(docker, image, project_copy):
    project = project_copy
    cfg = load_config(project, collect_overrides([]))
    cfg = cfg.model_copy(update={"python_versions": [cfg.image.python]})
    tags = []
    try:
        first = build_image(project, cfg, echo=False, reuse=False)
        tags += first.tags
        assert first.tested and groups(first)["deps"] is not None  # no record yet: every group ran
        key = first.checks["deps"]["key"]
        assert first.checks["deps"]["passed"] is True and first.checks["deps"]["layers"]

        plugin = project / "plugins" / "ml_platform_plugin.py"
        plugin.write_text(plugin.read_text() + "\n# an edit\n")
        edited = build_image(project, cfg, echo=False, reuse=False)
        tags += edited.tags
        assert edited.image_id != first.image_id
        g = groups(edited)
        assert g["deps"] is None and g["code"] is not None and g["api"] is not None, g
        assert edited.checks["deps"]["key"] == key
        assert edited.checks["code"]["image_id"] == edited.image_id  # the code checks ran on the new image
        assert BuildRecord.load(project).checks["deps"]["key"] == key

        team_in = project / "requirements" / "team.in"
        team_in.write_text(team_in.read_text() + "tqdm>=4.66\n")
        core.lock_all(project, cfg, resolver=UvResolver(UV), report=lambda s: None)
        locked = build_image(project, cfg, echo=False, reuse=False)
        tags += locked.tags
        g = groups(locked)
        assert g["deps"] is not None, g  # a dependency layer changed: the pass on the old layers is not used
        assert locked.checks["deps"]["key"] != key
        assert locked.checks["deps"]["layers"] != first.checks["deps"]["layers"]
        assert locked.checks["deps"]["image_id"] == locked.image_id

        full = build_image(project, cfg, echo=False, reuse=False, full_tests=True)  # --full-tests
        assert groups(full)["deps"] is not None
    finally:
        if tags:
            subprocess.run([docker, "rmi", "-f", *set(tags)], capture_output=True)
