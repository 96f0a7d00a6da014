"""Rendering: golden output, injection-proof values that round-trip exactly, render/render-check."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from platformctl.errors import PipelineError, RenderCheckError
from platformctl.pipelines.project import render_all, render_check, rendered
from platformctl.pipelines.render import py

ROOT = Path(__file__).resolve().parents[3]
GOLDEN = Path(__file__).parent / "golden"


@pytest.mark.parametrize("name", ["churn_model", "example_etl"])
def test_golden_output(repo, name):
    texts = rendered(repo)
    golden = GOLDEN / f"{name}.py"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.write_text(texts[f"dags/{name}.py"])
    assert texts[f"dags/{name}.py"] == golden.read_text()


def test_committed_dags_are_current():
    render_check(ROOT)


HOSTILE_VALUES = [
    '"); import os; os.system("touch /tmp/pwned-render") #',
    "'''\nimport os\nos.system('touch /tmp/pwned-render')\n'''",
    'multi\nline\r\nvalue\\with\\backslashes "quotes" \'single\'',
    "{{ 7 * 7 }} {% raw %} ${HOME} `id`",
    "unicodé ✓ \u2028 \x1b[31m",
]


def test_hostile_values_render_import_and_round_trip_without_executing(repo, tmp_path, monkeypatch):
    marker = Path("/tmp/pwned-render")
    marker.unlink(missing_ok=True)
    for p in (repo / "pipelines").glob("*.yaml"):
        p.unlink()
    doc = {
        "dag": {"name": "hostile", "schedule": None, "owner": HOSTILE_VALUES[0], "tags": HOSTILE_VALUES,
                "description": HOSTILE_VALUES[1]},
        "defaults": {"docker_image": "registry.local/ml/x:1.0", "resource_flavor": "cpu-small"},
        "jobs": {"a": {"command": HOSTILE_VALUES, "env": {f"V{i}": v for i, v in enumerate(HOSTILE_VALUES)},
                       "pool": HOSTILE_VALUES[2]},
                 "b": {"arguments": [HOSTILE_VALUES[1]], "depends_on": ["a"]}},
    }
    (repo / "pipelines/hostile.yaml").write_text(yaml.safe_dump(doc, allow_unicode=True))
    # a pool must exist in every environment (#35) and a pool name is letters, digits, _ . -: a hostile one
    # cannot be declared, so it is refused at render with one line; a declared pool renders as data
    with pytest.raises(PipelineError) as exc:
        render_all(repo)
    assert [p.field for p in exc.value.problems] == ["jobs.a.pool"] and "not a pool of local" in str(
        exc.value.problems[0])
    (repo / "environments").mkdir()
    (repo / "environments/local.yaml").write_text("bundle: {kind: local}\npools: {etl.pool-1: {slots: 2}}\n")
    doc["jobs"]["a"]["pool"] = "etl.pool-1"
    (repo / "pipelines/hostile.yaml").write_text(yaml.safe_dump(doc, allow_unicode=True))
    render_all(repo)
    text = (repo / "dags/hostile.py").read_text()
    assert "import os\n" not in text.replace("import os;", "")
    # Parse it with Airflow's own DagBag in a fresh process, and compare what the operators received.
    script = f"""
import json, os, sys
os.environ["ML_PLATFORM_FLAVORS"] = {str(repo / "flavors.yaml")!r}
from airflow.dag_processing.dagbag import DagBag
bag = DagBag({str(repo / "dags")!r}, safe_mode=False)
assert not bag.import_errors, bag.import_errors
dag = bag.dags["hostile"]
a, b = dag.get_task("a"), dag.get_task("b")
print("RESULT " + json.dumps({{"cmds": a.cmds, "env": a.env_vars if isinstance(a.env_vars, dict) else {{e.name: e.value for e in a.env_vars}}, "pool": a.pool,
    "args": b.arguments, "owner": a.owner, "tags": sorted(dag.tags), "desc": dag.description,
    "up": sorted(b.upstream_task_ids)}}))
"""
    p = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                       env={**os.environ, "ML_PLATFORM_BACKEND": "kubernetes"})
    assert p.returncode == 0, p.stderr[-3000:]
    import json

    got = json.loads(next(ln for ln in p.stdout.splitlines() if ln.startswith("RESULT "))[7:])
    assert got["cmds"] == HOSTILE_VALUES
    assert got["env"] == {f"V{i}": v for i, v in enumerate(HOSTILE_VALUES)}
    assert got["pool"] == "etl.pool-1" and got["args"] == [HOSTILE_VALUES[1]]
    assert got["owner"] == HOSTILE_VALUES[0] and got["tags"] == sorted(HOSTILE_VALUES)
    assert got["desc"] == HOSTILE_VALUES[1] and got["up"] == ["a"]
    assert not marker.exists()


def test_py_filter_refuses_non_literals():
    assert py({"a": [1, None, True, "x'y"]}) == "{'a': [1, None, True, \"x'y\"]}"
    with pytest.raises(TypeError):
        py(object())


def test_render_names_every_invalid_file_and_writes_nothing(repo):
    (repo / "pipelines/bad1.yaml").write_text("dag: {name: bad1}\njobs: {a: {command: [x], resource_flavor: nope}}\n")
    (repo / "pipelines/bad2.yaml").write_text("dag: {name: bad2, schedul: x}\njobs: {}\n")
    with pytest.raises(PipelineError) as exc:
        render_all(repo)
    files = {p.file for p in exc.value.problems}
    assert files == {"pipelines/bad1.yaml", "pipelines/bad2.yaml"}
    assert exc.value.exit_code == 11 and not (repo / "dags").exists()


def test_duplicate_dag_names_across_files(repo):
    shutil.copy(repo / "pipelines/churn_model.yaml", repo / "pipelines/churn_copy.yaml")
    with pytest.raises(PipelineError) as exc:
        render_all(repo)
    (p,) = exc.value.problems
    assert p.file == "pipelines/churn_model.yaml" or p.file == "pipelines/churn_copy.yaml"
    assert "already the DAG name in" in p.message


def test_render_check_finds_stale_missing_and_orphaned(repo):
    render_all(repo)
    render_check(repo)
    (repo / "dags/churn_model.py").write_text((repo / "dags/churn_model.py").read_text() + "# edit\n")
    with pytest.raises(RenderCheckError, match="churn_model.py is out of date"):
        render_check(repo)
    render_all(repo)
    (repo / "pipelines/example_etl.yaml").unlink()
    with pytest.raises(RenderCheckError, match="no longer exists"):
        render_check(repo)
    (repo / "dags/handwritten.py").write_text("# airflow dag written by hand\n")
    written, removed = render_all(repo)
    assert removed == ["dags/example_etl.py"] and (repo / "dags/handwritten.py").exists()


def test_teams_can_override_the_template(repo):
    custom = repo / "templates/custom.py.j2"
    custom.write_text((repo / "templates/dag.py.j2").read_text().replace("tasks = {}", "tasks = {}  # custom"))
    text = rendered(repo, template=str(custom))["dags/churn_model.py"]
    assert "tasks = {}  # custom" in text


def test_v2_hostile_values_stay_data_in_params_notifiers_docs_and_mapped_items(repo):
    for p in (repo / "pipelines").glob("*.yaml"):
        p.unlink()
    doc = {
        "version": 2,
        "dag": {"name": "hostile2", "schedule": {"any": ["s3://x/');__import__('os').system('id')#", "a\"b"]},
                "doc_md": HOSTILE_VALUES[1], "params": {"p": {"type": "string", "default": HOSTILE_VALUES[0],
                                                              "description": HOSTILE_VALUES[3]}},
                "notify": {"on_failure": {"connection": "ml_alerts", "message": HOSTILE_VALUES[2],
                                          "endpoint": HOSTILE_VALUES[4]}}},
        "defaults": {"docker_image": "registry.local/ml/x:1.0", "resource_flavor": "cpu-small"},
        "jobs": {"a": {"command": ["x"], "map": {"over": HOSTILE_VALUES, "as": "ITEM"},
                       "outlets": ["s3://y/\"\"\");__import__('os')#"], "group": "g"},
                 "s": {"command": ["segments"]},
                 "b": {"command": ["y"], "env": {"K": HOSTILE_VALUES[0]}, "map": {"over": {"output": "s"}, "as": "SEG"}}},
    }
    (repo / "pipelines/hostile2.yaml").write_text(yaml.safe_dump(doc, allow_unicode=True))
    render_all(repo)
    script = f"""
import json, os
os.environ["ML_PLATFORM_FLAVORS"] = {str(repo / "flavors.yaml")!r}
from airflow.dag_processing.dagbag import DagBag
bag = DagBag({str(repo / "dags")!r}, safe_mode=False)
assert not bag.import_errors, bag.import_errors
dag = bag.dags["hostile2"]
t = dag.get_task("g.a")
cb = dag.on_failure_callback
cb = cb[0] if isinstance(cb, list) else cb
print("RESULT " + json.dumps({{"doc": dag.doc_md, "param": dag.params["p"], "pdesc": dag.params.get_param("p").description,
    "msg": cb.json["message"], "endpoint": cb.endpoint, "items": [e["ITEM"] for e in t.expand_input.value["env"]],
    "outlets": [a.name for a in t.partial_kwargs["outlets"]],
    "assets": sorted(a.name for a in dag.timetable.asset_condition.objects),
    "b_up": sorted(dag.get_task("b").upstream_task_ids), "s_xcom": dag.get_task("s").do_xcom_push,
    "b_env": [dag.get_task("b").expand_input.value["env"].callables[0](v) for v in ("eu", True)]}}))
"""
    p = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                       env={**os.environ, "ML_PLATFORM_BACKEND": "kubernetes"})
    assert p.returncode == 0, p.stderr[-3000:]
    import json

    got = json.loads(next(ln for ln in p.stdout.splitlines() if ln.startswith("RESULT "))[7:])
    assert got["doc"] == HOSTILE_VALUES[1] and got["param"] == HOSTILE_VALUES[0] and got["pdesc"] == HOSTILE_VALUES[3]
    assert got["msg"] == HOSTILE_VALUES[2] and got["endpoint"] == HOSTILE_VALUES[4]
    assert got["items"] == HOSTILE_VALUES and got["outlets"] == ["s3://y/\"\"\");__import__('os')#"]
    assert got["assets"] == sorted(["s3://x/');__import__('os').system('id')#", "a\"b"])
    # mapped over another job's result: runs after it, which pushes its result; each item becomes $SEG
    assert got["b_up"] == ["s"] and got["s_xcom"] is True
    assert got["b_env"] == [{"K": HOSTILE_VALUES[0], "SEG": "eu"}, {"K": HOSTILE_VALUES[0], "SEG": "true"}]
