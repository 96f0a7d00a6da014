"""The executor is part of an environment: validated, written into the Helm values and env file, and refused
before anything is built or deployed when the image's locks lack its provider."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from platformctl.deploy.managed import env_vars, helm_values
from platformctl.environments import load_environment
from platformctl.errors import ExecutorError
from platformctl.executors import (EXECUTOR_CLASSES, check_project, configured_executors, executor_problem,
                                   required_packages)
from platformctl.image.checks import executors_problem, judge_code

ROOT = Path(__file__).resolve().parents[2]
IMAGE = {"repository": "r/airflow", "tag": "1.2.3"}


def env_repo(tmp_path: Path, executor: str | None, *, drop: tuple[str, ...] = ()) -> Path:
    """A project with environments/dev.yaml naming executor, and the real locks minus the `drop` pins."""
    (tmp_path / "environments").mkdir()
    doc = yaml.safe_load((ROOT / "environments/dev.yaml").read_text())
    if executor is not None:
        doc["executor"] = executor
    (tmp_path / "environments/dev.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    shutil.copytree(ROOT / "requirements", tmp_path / "requirements")
    for lock in (tmp_path / "requirements").glob("*-py3*.txt"):
        lines = lock.read_text().splitlines(keepends=True)
        lock.write_text("".join(ln for ln in lines if not ln.startswith(tuple(f"{d}==" for d in drop))))
    return tmp_path


def test_default_is_the_charts_celery_and_it_reaches_helm_values_and_env_file():
    env = load_environment(ROOT, "dev")
    assert env.executor == "CeleryExecutor"
    assert helm_values(env, env.bundle.prefix, IMAGE)["executor"] == "CeleryExecutor"
    assert env_vars(env, env.bundle.prefix, IMAGE)["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert load_environment(ROOT, "local").executor == "CeleryExecutor"


@pytest.mark.parametrize("value", ["LocalExecutor", "KubernetesExecutor", "CeleryExecutor,KubernetesExecutor",
                                   "CeleryExecutor, KubernetesExecutor"])
def test_named_executors_and_the_hybrid_are_accepted(tmp_path, value):
    env = load_environment(env_repo(tmp_path, value), "dev")
    assert env.executor == value.replace(" ", "")
    assert helm_values(env, env.bundle.prefix, IMAGE)["executor"] == value.replace(" ", "")


@pytest.mark.parametrize("value, words", [("CeleryExecuter", "did you mean 'CeleryExecutor'"),
                                          ("SequentialExecutor", "is not an Airflow executor"),
                                          ("CeleryExecutor,CeleryExecutor", "twice"), ("", "empty")])
def test_an_unknown_executor_is_one_line_with_file_and_line(tmp_path, value, words):
    with pytest.raises(ExecutorError) as e:
        load_environment(env_repo(tmp_path, value), "dev")
    line = e.value.one_line()
    assert line.startswith("environments/dev.yaml:") and line.split(":")[1].isdigit(), line
    assert words in line and "\n" not in line
    assert e.value.exit_code == 32


def test_the_real_locks_carry_every_configured_executor():
    check_project(ROOT, "3.12")
    check_project(ROOT, "3.11")
    assert configured_executors(ROOT) == ["CeleryExecutor"]


@pytest.mark.parametrize("executor, dropped, names", [
    ("CeleryExecutor", "apache-airflow-providers-celery", "apache-airflow-providers-celery"),
    ("CeleryExecutor", "redis", "redis"),
    ("CeleryExecutor,KubernetesExecutor", "apache-airflow-providers-cncf-kubernetes",
     "apache-airflow-providers-cncf-kubernetes"),
])
def test_a_provider_missing_from_the_locks_is_refused_naming_it(tmp_path, executor, dropped, names):
    root = env_repo(tmp_path, executor, drop=(dropped,))
    with pytest.raises(ExecutorError) as e:
        check_project(root, "3.12")
    line = e.value.one_line()
    assert line.startswith("environments/dev.yaml:") and line.split(":")[1].isdigit(), line
    assert f"needs {names}" in line and f"add {names} to requirements/airflow.in" in line
    assert "requirements/airflow-py312.txt" in line


def test_local_executor_needs_no_provider(tmp_path):
    root = env_repo(tmp_path, "LocalExecutor", drop=("apache-airflow-providers-celery", "celery", "redis"))
    check_project(root, "3.12", ["dev"])  # (the built-in local environment runs Celery: it would be refused)
    with pytest.raises(ExecutorError, match="environment local"):
        check_project(root, "3.12")
    assert required_packages("LocalExecutor") == {}
    assert executor_problem("LocalExecutor") is None


def test_the_image_check_needs_every_configured_class_loaded():
    wanted = ["CeleryExecutor", "CeleryExecutor,KubernetesExecutor"]
    ok = {"CeleryExecutor": [EXECUTOR_CLASSES["CeleryExecutor"]],
          "CeleryExecutor,KubernetesExecutor": [EXECUTOR_CLASSES["CeleryExecutor"],
                                                EXECUTOR_CLASSES["KubernetesExecutor"]]}
    assert executors_problem(ok, wanted) is None
    broken = {**ok, "CeleryExecutor": "ERROR ImportError: cannot import name 'retry' from 'celery.backends.database'"}
    assert "retry" in executors_problem(broken, wanted)
    assert "CeleryExecutor" in executors_problem({}, wanted)


def test_judge_code_reports_the_executor_check_by_name():
    results = judge_code({"code": {"executors": {"LocalExecutor": "ERROR ModuleNotFoundError: x"}}, "errors": {}},
                         airflow_version="3.3.2", labels={}, baked_dags=set(), examples=False,
                         executors=["LocalExecutor"])
    (r,) = [r for r in results if r.name.startswith("executors load")]
    assert not r.ok and "ModuleNotFoundError" in r.detail
