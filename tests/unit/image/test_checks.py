"""The image checks' rules and their record, without an engine (the probes are replaced by facts)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from platformctl.engine import DockerEngine
from platformctl.image import checks

ROOT = Path(__file__).resolve().parents[3]
LABELS = {"org.opencontainers.image.title": "t", "org.opencontainers.image.version": "1.0.0",
          "org.opencontainers.image.revision": "abc", "org.opencontainers.image.created": "2026-01-01T00:00:00Z",
          "org.opencontainers.image.source": "", "io.ml-platform.lock.fingerprint": "sha256:f",
          "io.ml-platform.airflow.version": "3.3.2", "io.ml-platform.python.version": "3.11"}
PINS = {"apache-airflow": "3.3.2", "typing-extensions": "4.16.0"}
PLUGINS_OUT = "log line\n" + json.dumps([{"name": "ml_platform", "macros": ["image_version", "flavor_limits"],
                                          "global_operator_extra_links": ["FlavorLink"],
                                          "fastapi_apps": [{"url_prefix": "/ml-platform"}]}])


def deps_facts(**over) -> dict:
    deps = {"distributions": {"apache_airflow": "3.3.2", "typing_extensions": "4.16.0"},
            "pip_check": {"returncode": 0, "output": ""},
            "bytecode": {"site": "/s", "fresh": 9000, "missing": [], "stale": [], "uncompilable": 3},
            "leftovers": [], "permissions": {"setuid_or_setgid": [], "venv_writable": []}}
    deps.update(over)
    return {"deps": deps, "errors": {}, "seconds": {}}


def code_facts(**over) -> dict:
    dag = {"dags": ["a", "b"], "errors": {}}
    code = {"user": ["50000", "0", "/opt/airflow"], "python_version": "3.11", "airflow_version": "3.3.2",
            "operators_file": "/opt/venv/lib/python3.11/site-packages/ml_platform/__init__.py",
            "build_record": {"version": "1.0.0", "revision": "abc", "created": "2026-01-01T00:00:00Z",
                             "lock_fingerprint": "sha256:f", "airflow_version": "3.3.2", "python_version": "3.11"},
            "plugins_cli": PLUGINS_OUT,
            "bundle_class": {"class": "ml_platform.bundle.PlatformDagBundle", "is_bundle": True}}
    for b in checks.BACKENDS:
        code[f"dagbag:{checks.BAKED_DAGS}:{b}"] = dag
        code[f"dagbag:{checks.EXAMPLES}:{b}"] = {"dags": ["example_job_operator"], "errors": {}}
    code.update(over)
    return {"code": code, "errors": {}, "seconds": {}}


def judge_code(facts):
    return checks.judge_code(facts, airflow_version="3.3.2", labels=LABELS, baked_dags={"a", "b"}, examples=True)


def failed(results) -> list[str]:
    return [r.name for r in results if not r.ok]


def test_good_facts_pass_every_rule():
    assert failed(checks.judge_deps(deps_facts(), PINS)) == []
    assert failed(judge_code(code_facts())) == []


@pytest.mark.parametrize("over, name", [
    ({"distributions": {"apache_airflow": "3.3.1", "typing_extensions": "4.16.0"}}, "pins installed"),
    ({"distributions": {"apache_airflow": "3.3.2"}}, "pins installed"),
    ({"pip_check": {"returncode": 1, "output": "x 1.0 requires y"}}, "uv pip check"),
    ({"bytecode": {"site": "/s", "fresh": 9000, "missing": ["a.py"], "stale": [], "uncompilable": 0}}, "bytecode fresh"),
    ({"bytecode": {"site": "/s", "fresh": 9000, "missing": [], "stale": ["b.py"], "uncompilable": 0}}, "bytecode fresh"),
    ({"bytecode": {"site": "/s", "fresh": 12, "missing": [], "stale": [], "uncompilable": 0}}, "bytecode fresh"),
    ({"leftovers": ["/root/.cache/uv/x"]}, "no leftovers"),
    ({"permissions": {"setuid_or_setgid": ["/usr/bin/su"], "venv_writable": []}}, "no setuid, venv root-writable only"),
    ({"permissions": {"setuid_or_setgid": [], "venv_writable": ["/opt/venv/.lock"]}},
     "no setuid, venv root-writable only"),
])
def test_each_dependency_rule_fails_on_its_fault(over, name):
    assert failed(checks.judge_deps(deps_facts(**over), PINS)) == [name]


@pytest.mark.parametrize("over, name", [
    ({"airflow_version": "3.3.1"}, "airflow version"),
    ({"user": ["0", "0", "/opt/airflow"]}, "uid 50000 gid 0"),
    ({"operators_file": "/src/ml_platform/__init__.py"}, "operators import"),
    ({"plugins_cli": "[]"}, "plugin loads"),
    ({"plugins_cli": json.dumps([{"name": "ml_platform", "macros": ["image_version"]}])}, "plugin loads"),
    ({"build_record": None}, "build record"),
    ({"python_version": "3.12"}, "build record"),
    ({f"dagbag:{checks.BAKED_DAGS}:docker": {"dags": ["a"], "errors": {"x.py": "boom"}}},
     f"DAGs import ({checks.BAKED_DAGS}, docker)"),
    ({f"dagbag:{checks.BAKED_DAGS}:kubernetes": {"dags": ["a"], "errors": {}}},
     f"DAGs import ({checks.BAKED_DAGS}, kubernetes)"),
    ({f"dagbag:{checks.EXAMPLES}:docker": {"dags": [], "errors": {}}}, f"DAGs import ({checks.EXAMPLES}, docker)"),
    ({"bundle_class": {"class": "ml_platform.bundle.Other", "is_bundle": True}}, "DAG bundle class loads"),
    ({"bundle_class": {"class": "ml_platform.bundle.PlatformDagBundle", "is_bundle": False}},
     "DAG bundle class loads"),
])
def test_each_code_rule_fails_on_its_fault(over, name):
    assert failed(judge_code(code_facts(**over))) == [name]


def test_a_bundle_class_airflow_cannot_import_fails_with_the_import_error():
    """Found by rehearsing 3.3.2 -> 3.2.2: the bundle class imports BundleVersion, which Airflow 3.2 lacks; the
    candidate's checks passed and the DAG processor crashed in the smoke stack. Now the check names it."""
    facts = code_facts()
    del facts["code"]["bundle_class"]
    facts["errors"]["code.bundle_class"] = ("Traceback ...\nImportError: cannot import name 'BundleVersion' from "
                                            "'airflow.dag_processing.bundles.base'\n")
    [r] = [r for r in judge_code(facts) if not r.ok]
    assert r.name == "DAG bundle class loads" and "cannot import name 'BundleVersion'" in r.detail


def test_a_fact_the_probe_could_not_gather_fails_its_check_with_the_reason():
    facts = code_facts()
    del facts["code"]["plugins_cli"]
    facts["errors"]["code.plugins_cli"] = "Traceback ...\nImportError: no module named fastapi\n"
    [r] = [r for r in judge_code(facts) if not r.ok]
    assert r.name == "plugin loads" and "ImportError: no module named fastapi" in r.detail
    dead = {"errors": {"probe": "exited 125: no such image"}}
    assert failed(checks.judge_deps(dead, PINS)) == ["pins installed", "uv pip check", "bytecode fresh", "no leftovers",
                                                   "no setuid, venv root-writable only"]


def test_labels_rule():
    assert checks.label_problem(LABELS) is None
    assert "revision" in checks.label_problem({**LABELS, "org.opencontainers.image.revision": "unknown"})
    assert checks.label_problem({k: v for k, v in LABELS.items() if not k.endswith("source")})


def test_api_rule():
    health = {"metadatabase": {"status": "healthy"}}
    flavors = {"flavors": {"cpu-small": {}, "gpu-a100": {}}}
    assert checks.api_problem(health, flavors, {"airflow_version": "3.3.2"}) is None
    assert checks.api_problem({"metadatabase": {"status": "unhealthy"}}, flavors, {"airflow_version": "3"})
    assert checks.api_problem(health, {"flavors": {"cpu-small": {}}}, {"airflow_version": "3"})
    assert checks.api_problem(health, flavors, {})
    # the plugin's page must refuse a request without credentials (issue 33, defect 10)
    assert checks.api_problem(health, flavors, {"airflow_version": "3"}, {"/ml-platform/": 401, "/ml-platform/build": 403}) is None
    assert "without credentials" in checks.api_problem(health, flavors, {"airflow_version": "3"}, {"/ml-platform/": 200})


# ---------------------------------------------------------------- which layers, which key
def test_the_project_dockerfile_final_stage_adds_the_code_layers():
    # the setuid strip (issue 20), entrypoint, flavors, plugins, DAGs, pipelines (issue 33), the revision file
    # and WORKDIR: the layers above the dependencies (a plugin or pipeline edit changes the last five or six)
    assert checks.final_stage_layers(ROOT / "Dockerfile") == 8


def test_dependency_layers_are_those_below_the_final_stage(tmp_path):
    df = tmp_path / "Dockerfile"
    df.write_text("FROM a AS deps\nRUN x \\\n  && y\nCOPY a /a\nFROM deps AS final\nENV A=1\nCOPY p /p\n"
                  "LABEL x=1\nWORKDIR /w\nUSER 1\n")
    assert checks.final_stage_layers(df) == 2
    assert checks.dependency_layers(["l1", "l2", "l3", "p", "w"], df) == ["l1", "l2", "l3"]
    # more final-stage steps than layers, or no Dockerfile: every layer (checks re-run on any change)
    assert checks.dependency_layers(["p", "w"], df) == ["p", "w"]
    assert checks.dependency_layers(["l1", "p"], tmp_path / "missing") == ["l1", "p"]


def test_the_key_follows_layers_pins_and_uv():
    k = checks.dependency_key(["l1", "l2"], PINS, "uv 0.13.9")
    assert k == checks.dependency_key(["l1", "l2"], dict(PINS), "uv 0.13.9")
    assert k != checks.dependency_key(["l1", "l3"], PINS, "uv 0.13.9")
    assert k != checks.dependency_key(["l1", "l2"], {**PINS, "tqdm": "4.67.1"}, "uv 0.13.9")
    assert k != checks.dependency_key(["l1", "l2"], PINS, "uv 0.14.0")


# ---------------------------------------------------------------- what make build runs
@pytest.fixture
def fake_probes(monkeypatch):
    calls = []
    monkeypatch.setattr(checks, "probe_deps", lambda engine, image, uv=None: calls.append("deps") or deps_facts())
    monkeypatch.setattr(checks, "probe_code", lambda engine, image, ex=None, executors=(): calls.append("code") or code_facts())
    monkeypatch.setattr(checks, "check_api", lambda engine, image, db=None: calls.append("api") or
                        [checks.Result("api", "API server healthy, plugin view answers", True)])
    monkeypatch.setattr(checks, "uv_version", lambda uv: "uv 0.13.9")
    return calls


def run(info, previous=None, full=False, dockerfile=ROOT / "Dockerfile"):
    expect = checks.Expect(PINS, "3.3.2", {"a", "b"}, Path("/examples"), dockerfile)
    return checks.run_checks(DockerEngine("docker", "unprobed"), "img", info, expect, previous=previous, full=full, uv="/uv")


def image(layers, iid="sha256:1"):
    return {"Id": iid, "RootFS": {"Layers": layers}, "Config": {"Labels": LABELS}}


DEPS = ["base", "airflow", "bytecode", "team", "operators"]
CODE = ["hardening", "entrypoint", "flavors", "plugins", "dags", "pipelines", "revision", "workdir"]  # the final stage's layers


def test_a_recorded_pass_on_the_same_layers_skips_deps_only(fake_probes):
    runs, rec = run(image(DEPS + CODE))
    assert sorted(fake_probes) == ["api", "code", "deps"] and all(r.ok for r in runs)
    assert rec["deps"]["passed"] is True and rec["deps"]["layers"] == DEPS
    fake_probes.clear()
    runs2, rec2 = run(image(DEPS + ["hardening", "entrypoint", "flavors", "plugins-2", "dags", "pipelines", "revision",
                                    "workdir"], "sha256:2"), rec)
    assert sorted(fake_probes) == ["api", "code"]
    assert {r.group: bool(r.skipped) for r in runs2} == {"deps": True, "code": False, "api": False}
    assert rec2["deps"] == rec["deps"] and rec2["code"]["image_id"] == "sha256:2"


@pytest.mark.parametrize("changed", [
    DEPS[:3] + ["team-with-tqdm"] + DEPS[4:],  # one more package in the team lock
    DEPS[:4] + ["operators-2"],  # the operators package (its requirements, its bytecode)
])
def test_a_changed_dependency_layer_runs_deps_again(fake_probes, changed):
    _, rec = run(image(DEPS + CODE))
    fake_probes.clear()
    _, rec2 = run(image(changed + CODE, "sha256:2"), rec)
    assert "deps" in fake_probes and rec2["deps"]["key"] != rec["deps"]["key"]


def test_a_record_that_did_not_pass_or_full_tests_run_deps(fake_probes):
    _, rec = run(image(DEPS + CODE))
    for previous, full in (({"deps": {**rec["deps"], "passed": False}}, False), (rec, True), ({}, False)):
        fake_probes.clear()
        run(image(DEPS + CODE), previous, full)
        assert "deps" in fake_probes


def test_a_record_written_by_hand_with_another_key_is_not_taken(fake_probes):
    forged = {"deps": {"key": "sha256:" + "0" * 64, "passed": True, "layers": DEPS, "image_id": "sha256:1"}}
    run(image(DEPS + CODE), forged)
    assert "deps" in fake_probes


def test_a_failed_deps_run_is_recorded_as_not_passed(fake_probes, monkeypatch):
    monkeypatch.setattr(checks, "probe_deps", lambda cli, image, uv=None: deps_facts(leftovers=["/tmp/x"]))
    runs, rec = run(image(DEPS + CODE))
    assert rec["deps"]["passed"] is False and rec["deps"]["failed"] == ["no leftovers: left in the image: ['/tmp/x']"]
    assert not [r for r in run(image(DEPS + CODE), rec)[0] if r.group == "deps"][0].skipped
