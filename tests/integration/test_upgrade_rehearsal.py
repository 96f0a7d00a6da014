"""The upgrade rehearsal end to end (issue #36), for real: the shipped Airflow 3.3.2 -> 3.2.2 (a lower version:
the same path as an upgrade, across a schema change; PAIRS has the other projects' pairs), relocked with uv, the candidate image built and checked, DAGs parsed in both
images, ruff AIR3, the current stack's database copied and migrated by the candidate, the smoke pipeline run on
both stacks. ONE rehearsal (module fixture) feeds every check: it reuses the current image `make build` made
and measures its own runtime. Then APPLY on a copy of the project (lock-check passes on the ordinary diff it
writes), built, and the way back rehearsed end to end (each of its changes undoes one of the way there).

Bad input (no image needed; each is refused before any relock or build) is checked against the real index.
"""

from __future__ import annotations

import hashlib
import subprocess
import time
from pathlib import Path

import pytest
from packaging.version import Version

from platformctl.config import collect_overrides, load_config
from platformctl.errors import StaleLockError, ToolMissingError, UpgradeInputError
from platformctl.image.build import check_inputs
from platformctl.lock.core import check_all, lock_filename
from platformctl.lock.diff import diff_pins
from platformctl.lock.files import read_pins
from platformctl.record import BuildRecord
from platformctl.services.build import build_image
from platformctl.upgrade.rehearse import READY, UpgradeRequest, apply, rehearse
from tests.conftest import ROOT, require
from tests.integration.helpers import GIT_ID, working_tree_copy

# a real pair of versions on the index, both ways. 3.3.2 <-> 3.2.2 crosses a schema change (the copy of the
# database is really migrated: down by the current image, up by the candidate on the way back); a project
# APPLY=1 moved to 3.3.1 (same schema head as 3.3.2) rehearses 3.3.1 <-> 3.3.2.
PAIRS = {"3.3.2": "3.2.2", "3.2.2": "3.3.2", "3.3.1": "3.3.2"}
SCHEMA_CHANGE = {"3.2.2", "3.3.2"}
CURRENT = load_config(ROOT).airflow_version
TARGET = PAIRS.get(CURRENT, "3.3.1")
DOWN = Version(TARGET) < Version(CURRENT)
KIND = next(k for k, i in (("major", 0), ("minor", 1), ("patch", 2))
            if Version(TARGET).release[i] != Version(CURRENT).release[i])


def _watched(root: Path) -> dict[str, str]:
    paths = [root / "platform.yaml", root / "build/build-record.json", *sorted((root / "requirements").iterdir())]
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}


def _current_build(docker: str) -> BuildRecord:
    rec = BuildRecord.load(ROOT)
    require(rec is not None and rec.tested, "no tested build of this tree: run make build first")
    return rec


@pytest.fixture(scope="module")
def rehearsal(docker):
    cfg = load_config(ROOT)
    require(cfg.airflow_version in PAIRS, f"the project is on Airflow {cfg.airflow_version}: the rehearsal pairs are "
            f"{', '.join(f'{a} -> {b}' for a, b in PAIRS.items())}")
    _current_build(docker)
    before = _watched(ROOT)
    t0 = time.perf_counter()
    lines: list[str] = []
    r = rehearse(ROOT, UpgradeRequest(TARGET), echo=lines.append)
    from platformctl.upgrade import report

    paths = report.write(r, ROOT)
    seconds = time.perf_counter() - t0
    print(f"\nupgrade rehearsal {r.from_version} -> {r.to_version}: {seconds:.0f}s\n" + "\n".join(lines))
    return r, before, paths, lines


def test_tree_stays_byte_identical(rehearsal):
    _, before, _, _ = rehearsal
    assert _watched(ROOT) == before


def test_verdict_ready_every_step_ran(rehearsal):
    r, _, _, lines = rehearsal
    steps = {s.name: s.status for s in r.runner.steps}
    assert steps == {n: "ok" for n in ("relock", "compare", "build", "image-checks", "parse", "lint",
                                       "smoke-current", "migrate", "smoke-candidate")}, r.runner.steps
    assert r.verdict == READY, (r.blockers, r.changes)
    assert len(lines) == 1 + len(steps)  # the heading, then one line per step with its time
    heavy = ("relock", "image-checks", "parse", "smoke-current", "migrate", "smoke-candidate")
    assert all(s.seconds > 0 for s in r.runner.steps if s.name in heavy)  # compare, lint, a cached build: ~0 s


def test_report_matches_the_actual_lock_differences(rehearsal):
    r, _, paths, _ = rehearsal
    py = r.python
    want = {}
    for s in ("airflow", "team"):
        old = read_pins((ROOT / "requirements" / lock_filename(s, py)).read_text())
        new = read_pins((r.scratch.root / "requirements" / lock_filename(s, py)).read_text())
        d = diff_pins(old, new)
        want.update({n: (a, b) for n, (a, b) in {**d.upgraded, **d.downgraded}.items()})
        want.update({n: (None, v) for n, v in d.added.items()})
        want.update({n: (v, None) for n, v in d.removed.items()})
    got = {c.name: (c.old, c.new) for v in r.comparison.groups.values() for c in v}
    assert got == want and "apache-airflow" in got
    assert [c.name for c in r.comparison.groups["airflow"]] == ["apache-airflow", "apache-airflow-core",
                                                                 "apache-airflow-task-sdk"]
    assert all(c.down == DOWN for c in r.comparison.groups["airflow"])
    md = paths[0].read_text()
    for v in r.comparison.groups.values():
        for c in v:
            assert c.text() in md
    assert "Verdict: **ready**" in md
    assert r.comparison.size_current > 0 and r.comparison.size_candidate > 0
    html = paths[1].read_text()
    assert "<script" not in html and f"apache-airflow {CURRENT} -&gt; {TARGET} ({KIND}{', down' if DOWN else ''})" in html


def test_candidate_is_local_and_checked(rehearsal, docker):
    r, _, _, _ = rehearsal
    assert r.candidate_tag.endswith(f"upgrade-candidate-airflow-{TARGET}-py{r.python}")
    labels = subprocess.run([docker, "image", "inspect", "-f", "{{json .Config.Labels}}", r.candidate.image_id],
                            capture_output=True, text=True, check=True).stdout
    assert f'"{TARGET}"' in labels or TARGET in labels
    assert r.checks.ok and set(r.checks.groups) == {"deps", "code", "api"}
    assert BuildRecord.load(ROOT).image_id != r.candidate.image_id  # the project's record names the current image


def test_parse_and_lint(rehearsal):
    r, _, _, _ = rehearsal
    assert r.parse.dags_current == r.parse.dags_candidate > 0
    assert r.parse.errors_candidate == {} and r.parse.changes == []
    assert r.lint.findings == []


def test_migration_of_the_copy(rehearsal):
    r, _, _, _ = rehearsal
    m = r.migration
    assert m.ok and m.dump_bytes > 0 and m.revision_before
    assert m.revision_after == m.candidate_head
    assert any(s.startswith("airflow db migrate (candidate image): ok") for s in m.steps)
    assert any(s.startswith("airflow db check-migrations (candidate image): ok") for s in m.steps)
    if {CURRENT, TARGET} == SCHEMA_CHANGE:  # a real migration, not a no-op
        assert m.revision_before != m.revision_after
        assert any(s.startswith("airflow db downgrade --to-revision") for s in m.steps) == DOWN


def test_smoke_runs_on_both(rehearsal, docker):
    r, _, _, _ = rehearsal
    cur, new = r.current_runs, r.candidate_runs
    assert [x.pipeline for x in cur.runs] == [x.pipeline for x in new.runs] == ["example_etl"]
    assert all(x.state == "success" and x.seconds > 0 for x in cur.runs + new.runs)
    assert [j.task for j in cur.runs[0].jobs] == [j.task for j in new.runs[0].jobs]
    # both stacks are gone, volumes included
    for side in (cur.project, new.project):
        ps = subprocess.run([docker, "ps", "-a", "-q", "--filter", f"label=com.docker.compose.project={side}"],
                            capture_output=True, text=True, check=True).stdout
        assert ps.strip() == ""


@pytest.fixture(scope="module")
def applied(rehearsal, tmp_path_factory):
    """APPLY on a copy of the project, committed as a reviewer would: (the copy, the files apply wrote)."""
    r, _, _, _ = rehearsal
    copy = working_tree_copy(tmp_path_factory.mktemp("applied") / "repo")
    written = apply(r, copy)
    return copy, written


def test_apply_writes_an_ordinary_diff(applied):
    """Exactly platform.yaml, airflow.in and the locks change; lock-check and make build's input checks pass."""
    copy, written = applied
    changed = subprocess.run(["git", "diff", "--name-only"], cwd=copy, capture_output=True, text=True,
                             check=True).stdout.split()
    assert set(changed) <= set(written) and {"platform.yaml", "requirements/airflow.in"} <= set(changed)
    cfg = load_config(copy)
    assert cfg.airflow_version == TARGET
    assert check_all(copy, cfg) == []  # make lock-check passes on the applied version
    check_inputs(copy, cfg)  # and everything make build refuses before building (lock-check, render-check)


def test_the_way_back_end_to_end(rehearsal, applied, docker):
    """The applied project (TARGET) is committed and built with make build's code (image tests included), then
    rehearses the way back to CURRENT end to end: relock, build, checks, parse, lint, smoke run on both,
    and its database migrated the other way. Its comparison undoes changes of the way there."""
    r, _, _, _ = rehearsal
    copy, _ = applied
    subprocess.run(["git", *GIT_ID, "commit", "-qam", f"Airflow {TARGET} (make upgrade-test APPLY=1)"],
                   cwd=copy, check=True)
    cfg = load_config(copy, collect_overrides([]))
    built = build_image(copy, cfg, echo=False, reuse=False)
    try:
        assert built.tested and built.airflow_version == TARGET
        before = _watched(copy)
        lines: list[str] = []
        t0 = time.perf_counter()
        back = rehearse(copy, UpgradeRequest(CURRENT), echo=lines.append)
        print(f"\nthe way back {back.from_version} -> {back.to_version}: {time.perf_counter() - t0:.0f}s\n"
              + "\n".join(lines))
        assert {s.name: s.status for s in back.runner.steps} == {s.name: "ok" for s in r.runner.steps}
        assert back.verdict == READY, (back.blockers, back.changes)
        assert back.lower == (not DOWN)
        there = {c.name: (c.old, c.new) for v in r.comparison.groups.values() for c in v}
        again = {c.name: (c.new, c.old) for v in back.comparison.groups.values() for c in v}
        # each change of the way back undoes one of the way there, Airflow's three included; not necessarily
        # all of them: the relock keeps a pin the target still accepts (3.2.2 -> 3.3.2 keeps aiosqlite 0.21.0,
        # which the way down had moved from 0.22.1), as a relock for a real upgrade would
        assert again.items() <= there.items() and r.comparison.groups["airflow"]
        assert {c.name for c in r.comparison.groups["airflow"]} <= again.keys()
        m = back.migration
        assert m.ok and m.revision_before and m.revision_after == m.candidate_head
        assert (m.revision_before == r.migration.revision_after and m.revision_after == r.migration.revision_before)
        assert all(x.state == "success" for x in back.current_runs.runs + back.candidate_runs.runs)
        assert back.parse.errors_candidate == {} and back.parse.changes == []
        assert _watched(copy) == before
    finally:
        subprocess.run([docker, "image", "rm", *built.tags], check=False, capture_output=True)


# ---------------------------------------------------------------- bad input: one line, nothing written
def test_version_not_on_the_index_names_the_nearest(docker):
    _current_build(docker)
    with pytest.raises(UpgradeInputError, match=r"3\.3\.9 is not on the package index.*nearest available: 3\.3\.2"):
        rehearse(ROOT, UpgradeRequest("3.3.9"), echo=lambda *_: None)


def test_python_the_target_does_not_support(docker):
    _current_build(docker)
    with pytest.raises(UpgradeInputError, match=r"does not support Python 3\.9"):
        rehearse(ROOT, UpgradeRequest(TARGET, python="3.9"), echo=lambda *_: None)


def test_stale_lock_and_no_engine(tmp_path, monkeypatch):
    copy = working_tree_copy(tmp_path / "repo")
    (copy / "requirements/team.in").write_text((copy / "requirements/team.in").read_text() + "rich\n")
    with pytest.raises(StaleLockError, match="run make lock"):
        rehearse(copy, UpgradeRequest(TARGET), echo=lambda *_: None)
    subprocess.run(["git", "checkout", "-q", "requirements/team.in"], cwd=copy, check=True)
    monkeypatch.setenv("DOCKER", str(tmp_path / "no-docker"))
    with pytest.raises(ToolMissingError, match="does not exist"):
        rehearse(copy, UpgradeRequest(TARGET), echo=lambda *_: None)


def test_provider_the_target_cannot_take(docker):
    _current_build(docker)
    r = rehearse(ROOT, UpgradeRequest(TARGET, providers="apache-airflow-providers-amazon<1"), echo=lambda *_: None)
    assert r.verdict == "blocked"
    assert r.blockers[0].where.startswith("requirements/airflow.in:")
    assert "apache-airflow-providers-amazon<1" in r.blockers[0].what
    assert {s.name: s.status for s in r.runner.steps}["build"] == "not run"
