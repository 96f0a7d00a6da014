"""Instance settings (#35): declared pools/connections, checked at render, diffed and applied through the API."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

from platformctl import cli
from platformctl.environments import load_environment
from platformctl.errors import (ConfigError, InstanceAuthError, InstanceSettingsError, InstanceUnreachable,
                                PipelineError)
from platformctl.instance.api import SettingsAPI
from platformctl.instance.settings import declared
from platformctl.instance.sync import apply, read_state
from platformctl.pipelines.project import render_all, rendered
from tests.conftest import ROOT
from tests.unit.instance.fake_api import FakeAirflow

GPU_PIPELINE = """\
version: 2
dag: {name: vision}
defaults: {docker_image: registry.local/ml/v:1.0, resource_flavor: gpu-a100}
jobs:
  train: {command: [train]}
  own: {command: [x], pool: big_pool}
  small: {command: [x], resource_flavor: cpu-small, secrets_from_connections: {DB: warehouse}}
"""


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    for item in ("flavors.yaml", "templates", "pipelines", "environments", "platform.yaml"):
        src = ROOT / item
        (shutil.copytree if src.is_dir() else shutil.copy)(src, tmp_path / item)
    return tmp_path


@pytest.fixture
def fake():
    f = FakeAirflow()
    yield f
    f.close()


def env_file(repo: Path, name: str, text: str) -> None:
    (repo / "environments" / f"{name}.yaml").write_text(text)


# ------------------------------------------------------------------------------------------ declared
@pytest.mark.parametrize("slots", ["0", "-2", "'4'", "2.5", "true", "null"])
def test_slots_must_be_a_positive_whole_number(repo, slots):
    env_file(repo, "qa", f"bundle: {{kind: local}}\npools:\n  etl:\n    slots: {slots}\n")
    with pytest.raises(ConfigError) as exc:
        load_environment(repo, "qa")
    line = exc.value.one_line()
    assert line.startswith("environments/qa.yaml:4: pools.etl.slots") or line.startswith(
        "environments/qa.yaml:3: pools.etl"), line
    assert "positive whole number" in line and "\n" not in line


@pytest.mark.parametrize("name, words", [("p" * 257, "Airflow refuses more than 256"),
                                          ("'gpu pool'", "may hold only letters, digits"),
                                          ("''", "must not be empty")])
def test_a_pool_name_airflow_refuses_is_one_line(repo, name, words):
    env_file(repo, "qa", f"bundle: {{kind: local}}\npools:\n  {name}: {{slots: 1}}\n")
    with pytest.raises(ConfigError) as exc:
        load_environment(repo, "qa")
    assert exc.value.one_line().startswith("environments/qa.yaml:2: pools: ") and words in exc.value.one_line()


def test_removed_needs_no_slots_and_default_pool_cannot_be_removed(repo):
    env_file(repo, "qa", "bundle: {kind: local}\npools:\n  old: {removed: true}\n  etl: {description: x}\n")
    with pytest.raises(ConfigError, match="slots is required"):
        load_environment(repo, "qa")
    env_file(repo, "qa", "bundle: {kind: local}\npools:\n  default_pool: {removed: true}\n")
    with pytest.raises(ConfigError, match="default_pool cannot be removed"):
        load_environment(repo, "qa")
    env_file(repo, "qa", "bundle: {kind: local}\npools:\n  old: {removed: true}\n")
    assert load_environment(repo, "qa").pools["old"].removed


def test_shipped_gpu_flavor_pool_is_declared_by_prod_and_derived_for_local():
    prod = declared(ROOT, load_environment(ROOT, "prod"))
    assert prod.pools["gpu-a100"].slots == 4 and prod.pools["gpu-a100"].where == "environments/prod.yaml:16"
    assert prod.connections["aws_default"].api_visible is False  # the platform writes it (describe_connection)
    local = declared(ROOT, load_environment(ROOT, "local"))
    assert local.file is None and local.pools["gpu-a100"].slots == 4 and local.adopts_connections


# ------------------------------------------------------------------------------------------ render
def test_flavor_pool_is_rendered_unless_the_job_names_its_own(repo):
    env_file(repo, "prod", (repo / "environments/prod.yaml").read_text().replace(
        "connections:\n", "  big_pool: {slots: 1}\nconnections:\n  warehouse: {conn_type: postgres}\n"))
    (repo / "pipelines/vision.yaml").write_text(GPU_PIPELINE)
    with pytest.raises(PipelineError) as exc:
        rendered(repo)  # dev allows cpu-small: warehouse is missing there
    assert [str(p) for p in exc.value.problems] == [
        "pipelines/vision.yaml:7: jobs.small.secrets_from_connections.DB 'warehouse' is not a connection of dev "
        "(declared: aws_default, ml_alerts; or add it to connections in environments/dev.yaml)"]
    env_file(repo, "dev", (repo / "environments/dev.yaml").read_text().replace(
        "connections:\n", "connections:\n  warehouse: {conn_type: postgres}\n"))
    text = rendered(repo)["dags/vision.py"]
    blocks = {b.split("task_id=")[1].split(",")[0]: b for b in text.split("JobOperator(")[1:]}
    assert "pool='gpu-a100'" in blocks["'train'"]  # the flavor's
    assert "pool='big_pool'" in blocks["'own'"]  # its own
    assert "pool=" not in blocks["'small'"]  # cpu-small names none


def test_flavor_pool_missing_in_an_environment_that_admits_the_flavor(repo):
    (repo / "pipelines/vision.yaml").write_text(GPU_PIPELINE.replace("pool: big_pool", "pool: gpu-a10"))
    env_file(repo, "staging", "bundle: {kind: local}\nconnections: {}\n")  # every flavor, no pools
    with pytest.raises(PipelineError) as exc:
        render_all(repo)
    got = [str(p) for p in exc.value.problems]
    assert ("pipelines/vision.yaml:3: jobs.train.resource_flavor 'gpu-a100' runs its jobs in pool 'gpu-a100' "
            "(flavors.yaml), which staging does not declare (declared: default_pool; or add it to pools in "
            "environments/staging.yaml; or set pool: on the job)") in got
    assert any(p.startswith("pipelines/vision.yaml:6: jobs.own.pool 'gpu-a10' is not a pool of prod, staging, local "
                            "(did you mean 'gpu-a100'?") for p in got), got
    assert any("'warehouse' is not a connection of dev, prod, staging" in p for p in got), got
    assert not (repo / "dags").exists()


def test_environment_without_connections_is_a_warning_not_a_refusal(repo):
    env_file(repo, "qa", "bundle: {kind: local}\nallowed_flavors: [cpu-small]\n")
    warnings: list = []
    rendered(repo, warnings=warnings)
    assert [str(w) for w in warnings if "qa" in str(w)] == [
        "pipelines/churn_retrain.yaml:16: dag.notify.on_failure.connection 'ml_alerts' is not checked in qa: it "
        "declares no connections (add connections: to the environment file to have render and deploy check it)"]


def test_bundle_connection_must_be_declared_when_the_platform_does_not_write_it(repo):
    env_file(repo, "qa", "bundle: {kind: s3, bucket: b-qa, describe_connection: false, aws_conn_id: s3_qa}\n"
                         "connections: {ml_alerts: {conn_type: http}}\n")
    with pytest.raises(PipelineError) as exc:
        rendered(repo)
    assert [str(p) for p in exc.value.problems] == [
        "environments/qa.yaml:1: bundle.aws_conn_id 's3_qa' (the connection the DAG bundle reads S3 with) is not "
        "declared: bundle.describe_connection is false, so add it to connections (e.g. s3_qa: {conn_type: aws})"]


# ------------------------------------------------------------------------------------------ apply
def qa(repo: Path, fake: FakeAirflow, extra: str = "") -> None:
    env_file(repo, "qa", f"bundle: {{kind: local, path: .platform/bundles/qa}}\ndescription: the qa instance\n"
                         f"managed: {{api_url: '{fake.url}'}}\n"
                         "pools:\n  etl: {slots: 2, description: nightly}\n  old: {removed: true}\n" + extra +
                         "connections:\n  ml_alerts: {conn_type: http}\n")


def test_apply_creates_updates_deletes_and_leaves_the_rest(repo, fake):
    qa(repo, fake, "  busy: {removed: true}\n  same: {slots: 1}\n")
    fake.connections["ml_alerts"] = "http"
    fake.pools.update({"old": {"name": "old", "slots": 3}, "busy": {"name": "busy", "slots": 1},
                       "same": {"name": "same", "slots": 1, "description": ""},
                       "hand": {"name": "hand", "slots": 9}})
    fake.in_use["busy"] = 2
    api = SettingsAPI.for_url(fake.url)
    r = apply(api, declared(repo, load_environment(repo, "qa")))
    assert [(c.action, c.name) for c in r.applied] == [("create", "etl"), ("delete", "old")]
    assert [(c.name, c.note) for c in r.kept] == [("busy", "2 running task(s) use it; the next deploy deletes it")]
    assert set(fake.pools) == {"default_pool", "etl", "busy", "same", "hand"}
    assert fake.pools["etl"] == {"name": "etl", "slots": 2, "description": "nightly", "include_deferred": False}
    assert r.state.only_on_instance == [{"name": "hand", "slots": 9, "in_use": 0}]
    assert r.state.unchanged == ["same"]
    fake.pools["etl"]["slots"] = 5  # by hand
    st = read_state(api, declared(repo, load_environment(repo, "qa")))
    assert "  DRIFT pool etl: slots 5 on the instance, 2 declared" in st.drift_lines()
    assert "  DRIFT pool hand: only on the instance (9 slots), not declared" in st.drift_lines()


def test_default_pool_slots_are_set_the_way_airflow_allows(repo, fake):
    env_file(repo, "qa", "bundle: {kind: local}\npools: {default_pool: {slots: 64, description: ignored}}\n")
    r = apply(SettingsAPI.for_url(fake.url), declared(repo, load_environment(repo, "qa")))
    assert [(c.action, c.name, c.differs) for c in r.applied] == [("update", "default_pool", ("slots",))]
    i = fake.requests.index(("PATCH", "/api/v2/pools/default_pool", {"slots": 64, "include_deferred": False}))
    assert fake.queries[i] == "update_mask=slots&update_mask=include_deferred"  # only these two may change on it
    assert fake.pools["default_pool"]["slots"] == 64


def test_a_pool_that_became_busy_since_the_read_is_not_deleted(repo, fake):
    qa(repo, fake)
    fake.connections["ml_alerts"] = "http"
    fake.pools["old"] = {"name": "old", "slots": 1}
    fake.in_use_on_get["old"] = 1  # free in the list, busy when asked again just before the delete
    r = apply(SettingsAPI.for_url(fake.url), declared(repo, load_environment(repo, "qa")))
    assert "old" in fake.pools and [c.name for c in r.kept] == ["old"]
    assert ("DELETE", "/api/v2/pools/old", None) not in fake.requests


def test_a_missing_connection_refuses_before_any_write(repo, fake):
    qa(repo, fake)
    with pytest.raises(InstanceSettingsError) as exc:
        apply(SettingsAPI.for_url(fake.url), declared(repo, load_environment(repo, "qa")))
    assert exc.value.exit_code == 25 and fake.writes() == []
    assert "connection ml_alerts declared at environments/qa.yaml:8 is not on the instance" in exc.value.one_line()
    assert [r[1] for r in fake.requests if r[1].startswith("/api/v2/connections")] == [
        "/api/v2/connections/ml_alerts"]  # its id only: never a list of connections with their secrets


@pytest.mark.parametrize("status", [401, 403])
def test_401_403_names_the_token_setting_and_writes_nothing(repo, fake, status, monkeypatch):
    monkeypatch.setenv("AIRFLOW_API_TOKEN", "wrong")
    qa(repo, fake)
    fake.status = status
    with pytest.raises(InstanceAuthError) as exc:
        apply(SettingsAPI.for_url(fake.url), declared(repo, load_environment(repo, "qa")))
    line = exc.value.one_line()
    assert f"refused GET /pools ({status}" in line and "set AIRFLOW_API_TOKEN" in line and exc.value.exit_code == 26
    assert fake.tokens[0] == "Bearer wrong" and fake.writes() == []


def test_unreachable_api_names_the_url_setting(repo, fake):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env_file(repo, "qa", f"bundle: {{kind: local}}\nmanaged: {{api_url: 'http://127.0.0.1:{port}'}}\n"
                         "pools: {etl: {slots: 1}}\n")
    with pytest.raises(InstanceUnreachable) as exc:
        apply(SettingsAPI.for_url(f"http://127.0.0.1:{port}", "managed.api_url in environments/qa.yaml"),
              declared(repo, load_environment(repo, "qa")))
    assert exc.value.exit_code == 27 and "check managed.api_url in environments/qa.yaml" in exc.value.one_line()


def test_a_write_failing_midway_names_what_was_and_was_not_applied(repo, fake):
    qa(repo, fake, "  zeta: {slots: 1}\n")
    fake.connections["ml_alerts"] = "http"
    fake.fail[("POST", None)] = 500
    fake.pools["etl"] = {"name": "etl", "slots": 1, "description": "nightly"}  # an update first, then a create
    with pytest.raises(InstanceSettingsError) as exc:
        apply(SettingsAPI.for_url(fake.url), declared(repo, load_environment(repo, "qa")))
    line = exc.value.one_line()
    assert "qa: pool zeta not applied: POST /pools" in line and "applied: etl; not applied: zeta" in line


# ------------------------------------------------------------------------------------------ the commands
def project(repo: Path) -> Path:
    (repo / "build").mkdir()
    (repo / "build/build-record.json").write_text(json.dumps(
        {"tags": ["ml-platform-airflow:0.1.0-dev.1"], "digest": None, "image_id": "sha256:local"}))
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    return repo


def run_cli(monkeypatch, capsys, repo: Path, *args: str) -> tuple[int, str, str]:
    monkeypatch.setenv("PLATFORM_ROOT", str(repo))
    code = cli.main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_deploy_refuses_before_the_switch_and_applies_after_the_fix(repo, fake, monkeypatch, capsys):
    project(repo)
    qa(repo, fake)
    code, out, err = run_cli(monkeypatch, capsys, repo, "deploy", "--env", "qa")
    assert code == 25 and "connection ml_alerts declared at environments/qa.yaml:8" in err
    assert not (repo / ".platform/bundles/qa/current.json").exists() and fake.writes() == []
    fake.connections["ml_alerts"] = "http"
    code, out, err = run_cli(monkeypatch, capsys, repo, "deploy", "--env", "qa")
    assert code == 0, err
    assert "instance settings: 1 pool change(s) applied (create etl), 0 as declared; 1 connection(s) found" in out
    assert out.index("instance settings") < out.index("deploying bundle")  # before the switch
    assert (repo / ".platform/bundles/qa/current.json").exists()


def test_deploy_without_api_says_it_did_not_apply(repo, monkeypatch, capsys):
    project(repo)
    env_file(repo, "qa", "bundle: {kind: local, path: .platform/bundles/qa}\npools: {etl: {slots: 2}}\n")
    code, out, err = run_cli(monkeypatch, capsys, repo, "deploy", "--env", "qa")
    assert code == 0, err
    assert ("instance settings NOT applied (no managed.api_url in environments/qa.yaml): 1 pool(s) and 0 "
            "connection(s) declared; make plan ENV=qa lists them") in out
    code, out, err = run_cli(monkeypatch, capsys, repo, "plan", "--env", "qa", "--no-resources")
    assert "  ? pool etl: 2 slots (create or update; the instance was not read)" in out


def test_plan_lists_pool_changes_and_refuses_on_a_missing_connection(repo, fake, monkeypatch, capsys):
    project(repo)
    qa(repo, fake)
    fake.pools["old"] = {"name": "old", "slots": 1}
    code, out, err = run_cli(monkeypatch, capsys, repo, "plan", "--env", "qa", "--no-resources")
    assert code == 51, out + err
    assert "  + pool etl: 2 slots (nightly)" in out and "  - pool old (1 slots; marked removed)" in out
    assert "  MISSING connection ml_alerts (http), declared at environments/qa.yaml:8" in out
    assert "plan for qa refused: the instance lacks connection ml_alerts" in err
    assert fake.writes() == []
    fake.connections["ml_alerts"] = "http"
    code, out, err = run_cli(monkeypatch, capsys, repo, "plan", "--env", "qa", "--no-resources", "--json")
    assert code == 50 and json.loads(out)["settings"]["refused"] is False
