"""make migrate: v1 files become v2 with comments and layout kept, idempotent, and the DAGs they render
are equivalent (same tasks, dependencies and arguments, read back through Airflow's DagBag)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from platformctl.errors import PipelineError
from platformctl.pipelines.migrate import migrate_files, migrate_text
from platformctl.pipelines.project import flavor_names, pipeline_files, render_all
from platformctl.pipelines.validate import check

ROOT = Path(__file__).resolve().parents[3]
V1_EXAMPLES = ["churn_model", "example_etl", "example_failing"]


def test_shipped_v1_examples_are_still_v1():
    for name in V1_EXAMPLES:
        c = check(f"pipelines/{name}.yaml", (ROOT / f"pipelines/{name}.yaml").read_bytes(), flavor_names(ROOT))
        assert c.source_version == 1 and not c.problems


def test_migrate_keeps_every_comment_and_line_it_does_not_need_to_change(repo):
    before = {p.name: p.read_text() for p in pipeline_files(repo)}
    results = migrate_files(repo, pipeline_files(repo), flavor_names(repo))
    changed = {r.file for r in results if r.changed}
    assert changed == {f"pipelines/{n}.yaml" for n in V1_EXAMPLES}
    for p in pipeline_files(repo):
        old, new = before[p.name], p.read_text()
        if f"pipelines/{p.name}" not in changed:
            assert old == new
            continue
        old_lines = [ln for ln in old.splitlines() if ln not in ("version: 1", "  retries: 2")]
        new_lines = [ln for ln in new.splitlines() if ln not in ("version: 2", "  retries: 2")]
        assert old_lines == new_lines, p.name  # comments, order, flow lists, quoting, null: all kept
        assert check(p.name, new.encode(), flavor_names(repo)).source_version == 2
    churn = (repo / "pipelines/churn_model.yaml").read_text()
    assert "catchup: false\ndefaults:\n  retries: 2\n  docker_image:" in churn  # dag.retries -> defaults.retries
    again = migrate_files(repo, pipeline_files(repo), flavor_names(repo))
    assert not any(r.changed for r in again)  # idempotent


def test_migrate_without_version_line_and_with_both_retries():
    text = "# header comment\ndag:   # the dag\n  name: x\n  retries: 3\ndefaults:\n  retries: 1\n" \
           "  docker_image: r/x:1\n  resource_flavor: cpu-small\njobs:\n  a: {command: [x]}\n"
    r = migrate_text("pipelines/x.yaml", text)
    assert r.new.startswith("# header comment\nversion: 2\ndag:   # the dag\n  name: x\ndefaults:\n  retries: 1\n")
    assert any("removed dag.retries (3)" in n for n in r.notes)


def test_a_newer_version_is_refused_naming_the_version_this_tool_reads():
    with pytest.raises(PipelineError) as exc:
        migrate_text("pipelines/x.yaml", "# c\nversion: 3\ndag: {name: x}\njobs: {a: {command: [x]}}\n")
    (p,) = exc.value.problems
    assert str(p) == ("pipelines/x.yaml:2: version format version 3 is newer than this platform reads (version 2): "
                      "update the platform repository, or write the file in version 2")


def test_make_migrate_prints_a_diff_then_changes_nothing(repo):
    env = {**os.environ, "PLATFORM_ROOT": str(repo)}
    dry = subprocess.run([sys.executable, str(ROOT / "build.py"), "migrate", "--dry-run"], capture_output=True,
                         text=True, env=env)
    assert dry.returncode == 1 and "-version: 1\n+version: 2" in dry.stdout and "would migrate 3" in dry.stdout
    assert "version: 1" in (repo / "pipelines/churn_model.yaml").read_text()
    p = subprocess.run([sys.executable, str(ROOT / "build.py"), "migrate"], capture_output=True, text=True, env=env)
    assert p.returncode == 0 and "+++ b/pipelines/churn_model.yaml" in p.stdout and "migrated 3 to version 2" in p.stdout
    p = subprocess.run([sys.executable, str(ROOT / "build.py"), "migrate"], capture_output=True, text=True, env=env)
    assert p.returncode == 0 and "migrated 0 to version 2" in p.stdout and "---" not in p.stdout


DUMP = r"""
import json, os, sys
from airflow.dag_processing.dagbag import DagBag
out = {}
for folder in sys.argv[1:]:
    bag = DagBag(folder, safe_mode=False)
    assert not bag.import_errors, bag.import_errors
    dags = {}
    for dag_id, dag in bag.dags.items():
        if dag_id not in os.environ["DAGS"].split():
            continue
        tasks = {}
        for t in dag.tasks:
            env = t.env_vars if isinstance(t.env_vars, dict) else {e.name: e.value for e in t.env_vars}
            tasks[t.task_id] = {"image": t.image, "cmds": t.cmds, "arguments": t.arguments, "env": env,
                                "flavor": t.resource_flavor, "resources": str(t.container_resources),
                                "retries": t.retries, "timeout": str(t.execution_timeout),
                                "retry_delay": str(t.retry_delay), "trigger_rule": str(t.trigger_rule),
                                "pool": t.pool, "owner": t.owner, "upstream": sorted(t.upstream_task_ids)}
        dags[dag_id] = {"schedule": [type(dag.timetable).__name__, str(getattr(dag.timetable, "_expression", ""))], "tags": sorted(dag.tags), "catchup": dag.catchup,
                        "start": str(dag.start_date), "description": dag.description, "tasks": tasks}
    out[folder] = dags
print("RESULT " + json.dumps(out))
"""


def test_migrated_examples_render_equivalent_dags(repo, tmp_path):
    v1 = tmp_path / "v1"
    shutil.copytree(repo, v1)
    render_all(v1)
    migrate_files(repo, pipeline_files(repo), flavor_names(repo))
    render_all(repo)
    for name in V1_EXAMPLES:
        assert "PIPELINE_FORMAT_VERSION = 2" in (repo / f"dags/{name}.py").read_text()
        assert "PIPELINE_FORMAT_VERSION = 1" in (v1 / f"dags/{name}.py").read_text()
    p = subprocess.run([sys.executable, "-c", DUMP, str(v1 / "dags"), str(repo / "dags")], capture_output=True,
                       text=True, env={**os.environ, "ML_PLATFORM_BACKEND": "kubernetes",
                                       "ML_PLATFORM_FLAVORS": str(repo / "flavors.yaml"),
                                       "DAGS": " ".join(V1_EXAMPLES)})
    assert p.returncode == 0, p.stderr[-3000:]
    got = json.loads(next(ln for ln in p.stdout.splitlines() if ln.startswith("RESULT "))[7:])
    before, after = got[str(v1 / "dags")], got[str(repo / "dags")]
    assert set(before) == set(V1_EXAMPLES)
    for name in V1_EXAMPLES:
        assert after[name] == before[name], name
    assert before["churn_model"]["tasks"]["train"]["retries"] == 2  # dag.retries moved, still every job's


def test_comments_around_the_moved_key_are_kept():
    text = ("version: 1\ndag:\n  name: x\n  retries: 2   # two retries\n  # the defaults follow\n\n"
            "defaults:\n  docker_image: r/x:1  # pinned\n  resource_flavor: cpu-small\njobs:\n  a: {command: [x]}\n")
    assert migrate_text("pipelines/x.yaml", text).new == (
        "version: 2\ndag:\n  name: x\n  # the defaults follow\n\n"
        "defaults:\n  retries: 2   # two retries\n  docker_image: r/x:1  # pinned\n  resource_flavor: cpu-small\n"
        "jobs:\n  a: {command: [x]}\n")
