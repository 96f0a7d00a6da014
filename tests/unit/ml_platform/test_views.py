"""The platform page (ml_platform.views): graphs read from the bundle's pipeline YAML and manifest, the
status, the flavors, the build; every route behind Airflow's own authentication and DAG-read permission."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from ml_platform import views
from ml_platform.views import graph
from ml_platform.views import bundle_pipelines as pipelines_mod

ROOT = Path(__file__).resolve().parents[3]
ROUTES = ("/", "/pipelines", "/status", "/flavors", "/build")


@pytest.fixture
def client(monkeypatch):
    """The app with its authorization dependency answered (the tests below check what the views show;
    test_every_route_requires_a_user_allowed_to_read_dags checks the dependency itself)."""
    monkeypatch.setenv("ML_PLATFORM_FLAVORS", str(ROOT / "flavors.yaml"))
    monkeypatch.setenv("ML_PLATFORM_ALLOWED_FLAVORS", "cpu-small,cpu-large")
    for var in views.BUILD_ENV.values():
        monkeypatch.delenv(var, raising=False)
    (auth,) = views.app.router.dependencies
    from airflow.api_fastapi.core_api.security import get_user

    views.app.dependency_overrides[auth.dependency] = lambda: None
    views.app.dependency_overrides[get_user] = lambda: "a user"
    monkeypatch.setattr(views, "_may_read", lambda user, dag_id: True)
    yield TestClient(views.app)
    views.app.dependency_overrides.clear()


@pytest.fixture
def bundle(tmp_path, monkeypatch):
    """A fetched bundle version as PlatformDagBundle leaves it: dags/, pipelines/, bundle-manifest.json."""
    version = tmp_path / "versions/b-0123456789abcdef"
    (version / "dags").mkdir(parents=True)
    (version / "pipelines").mkdir()
    shutil.copy(ROOT / "pipelines/example_etl.yaml", version / "pipelines/example_etl.yaml")
    (version / "dags/example_etl.py").write_text("raise SystemExit('a page view must not run DAG code')\n")
    (version / "pipelines/not_shipped.yaml").write_text("dag: {name: stray}\njobs: {a: {}}\n")  # not in the manifest
    manifest = {"version": "b-0123456789abcdef", "commit": "abc123", "created": "2026-12-06T10:00:00Z",
                "files": {"dags/example_etl.py": {}, "pipelines/example_etl.yaml": {}}}
    (version / "bundle-manifest.json").write_text(json.dumps(manifest))
    monkeypatch.setenv("ML_PLATFORM_PIPELINE_DIRS", str(version))
    return version


def test_view_lists_flavors_and_the_build_record(client, monkeypatch):
    r = client.get("/flavors").json()
    assert r["allowed"] == ["cpu-large", "cpu-small"] and "gpu-a100" in r["flavors"]
    missing = client.get("/build")
    assert missing.status_code == 404 and "ML_PLATFORM_IMAGE_VERSION is not set" in missing.json()["detail"]
    monkeypatch.setenv("ML_PLATFORM_IMAGE_VERSION", "1.2.3")
    monkeypatch.setenv("ML_PLATFORM_LOCK_FINGERPRINT", "sha256:x")
    build = client.get("/build").json()
    assert build["version"] == "1.2.3" and build["lock_fingerprint"] == "sha256:x" and build["revision"] == ""
    page = client.get("/").text
    assert "id='flavor-gpu-a100'" in page and "1.2.3" in page and "sha256:x" in page


def test_page_draws_the_bundles_pipelines_from_their_yaml(client, bundle):
    """/ml-platform/ draws each pipeline the bundle version ships (its manifest lists them): example_etl's
    4 jobs, its 3 edges, flavor badges with limits, a flavor this environment does not allow marked; the
    DAG files are never read or run."""
    (p,) = client.get("/pipelines").json()["pipelines"]
    assert p["dag_id"] == "example_etl" and p["source"] == "pipelines/example_etl.yaml"
    assert p["bundle_version"] == "b-0123456789abcdef" and p["commit"] == "abc123"
    assert [(j["name"], j["flavor"], j["image"]) for j in p["jobs"]] == [
        ("extract", "cpu-small", "ml-platform/etl-job:0.1.0"), ("transform", "cpu-small", "ml-platform/etl-job:0.1.0"),
        ("train", "cpu-medium", "ml-platform/etl-job:0.1.0"), ("load", "cpu-small", "ml-platform/etl-job:0.1.0")]
    assert p["edges"] == [["extract", "transform"], ["transform", "train"], ["train", "load"]]

    page = client.get("/").text
    svg = page[page.index("<svg class='graph' id='graph-example_etl'"):]
    svg = svg[: svg.index("</svg>")]
    assert svg.count("<g class='job'") == 4
    for name in ("extract", "transform", "train", "load"):
        assert f"data-id='{name}'" in svg
    for a, b in p["edges"]:
        assert f"data-source='{a}' data-target='{b}'" in svg
    assert svg.count("class='edge'") == 3
    train = svg[svg.index("data-id='train'"):svg.index("data-id='load'")]
    assert "cpu-medium · 2 cpu · 2Gi<" in train and "✕ not allowed here" in train  # allowed: cpu-small, cpu-large
    assert svg.count("not allowed here") == 1
    assert svg.count("cpu-small · 1 cpu · 1Gi<") == 3
    assert "ml-platform/etl-job:0.1.0" in svg
    x = {name: int(svg.split(f"data-id='{name}' transform='translate(")[1].split(",")[0])
         for name in ("extract", "transform", "train", "load")}
    assert x["extract"] < x["transform"] < x["train"] < x["load"]  # one layer per step, left to right
    assert "bundle b-0123456789abcdef" in page
    assert "<script" not in page and "<link" not in page and " src=" not in page  # self-contained, nothing fetched


def test_a_v2_pipeline_maps_groups_and_output_edges(tmp_path, monkeypatch):
    """Without a manifest (the image's /opt/airflow/{dags,pipelines}), a dags folder's sibling pipelines/
    is read; a job mapped over another job's output runs after it, as the model says."""
    (tmp_path / "dags").mkdir()
    (tmp_path / "pipelines").mkdir()
    (tmp_path / "pipelines/m.yaml").write_text(
        "version: 2\ndag: {name: m}\ndefaults: {docker_image: 'i:1', resource_flavor: cpu-small}\n"
        "jobs:\n  list: {command: [x]}\n  each: {command: [y], group: g, map: {over: {output: list}, as: X},"
        " resource_flavor: gpu-a100}\n")
    monkeypatch.setenv("ML_PLATFORM_PIPELINE_DIRS", str(tmp_path / "dags"))
    (p,) = pipelines_mod.running_pipelines()
    assert p.edges == [["list", "each"]]
    assert [(j.name, j.flavor, j.group, j.mapped) for j in p.jobs] == [
        ("list", "cpu-small", None, False), ("each", "gpu-a100", "g", True)]


def test_hostile_names_are_escaped(client, tmp_path, monkeypatch):
    (tmp_path / "pipelines").mkdir()
    (tmp_path / "pipelines/x.yaml").write_text(
        "dag: {name: \"x'><script>alert(1)</script>\"}\njobs: {\"a'><b>\": {docker_image: \"<i>:1\"}}\n")
    monkeypatch.setenv("ML_PLATFORM_PIPELINE_DIRS", str(tmp_path))
    page = client.get("/").text
    assert "<script>" not in page and "<b>" not in page and "<i>" not in page


def test_page_layers_a_fan_out_and_fan_in():
    pos = graph.layered(["a", "b", "c", "d"], [["a", "b"], ["a", "c"], ["b", "d"], ["c", "d"]])
    assert pos == {"a": (0, 0), "b": (1, 0), "c": (1, 1), "d": (2, 0)}


def test_status_shows_each_platform_bundle_and_the_image(client, monkeypatch):
    class Bundle:
        def __init__(self, live, here, error=None):
            self.s = {"bundle": "ml-platform", "store": "/store", "prefix": "airflow/dev", "served_here": here,
                      "live": live and {"version": live, "switched_at": "2026-12-03T10:00:00Z", "commit": "abc123",
                                        "image_digest": None, "history": ["b-old"]}, "error": error}

        def status(self):
            return self.s

    class Other:  # a bundle of another class: not ours, not shown
        pass

    monkeypatch.setenv("ML_PLATFORM_IMAGE_VERSION", "1.2.3")
    monkeypatch.setenv("AIRFLOW_VAR_ENVIRONMENT", "dev")
    monkeypatch.setenv("ML_PLATFORM_PIPELINE_DIRS", "/nonexistent")
    monkeypatch.setattr(pipelines_mod, "configured_bundles", lambda: [Bundle("b-2", "b-1"), Other()])
    st = client.get("/status").json()
    assert st["environment"] == "dev" and st["image"]["version"] == "1.2.3"
    assert [b["live"]["version"] for b in st["bundles"]] == ["b-2"]
    page = client.get("/").text
    status = page[page.index("<table id='status'"):]
    status = status[:status.index("</table>")]
    assert "b-2" in status and "serving b-1: the live version arrives within the refresh interval" in status
    monkeypatch.setattr(pipelines_mod, "configured_bundles",
                        lambda: [Bundle(None, None, "no current.json: nothing is deployed")])
    assert "nothing is deployed" in client.get("/").text


@pytest.fixture
def auth_manager(monkeypatch, tmp_path):
    """Airflow's SimpleAuthManager, initialised as the API server does, with authentication on."""
    from airflow.api_fastapi import app as api_app

    monkeypatch.setenv("AIRFLOW__CORE__AUTH_MANAGER",
                       "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager")
    monkeypatch.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS", "False")
    monkeypatch.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS", "vic:viewer")
    monkeypatch.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE", str(tmp_path / "passwords.json"))
    monkeypatch.setenv("AIRFLOW__API_AUTH__JWT_SECRET", "unit-test-secret-" + "x" * 64)
    monkeypatch.setattr(api_app._AuthManagerState, "instance", None)
    # token revocation is a metadata-DB lookup (no DB here; the in-image test runs it for real)
    monkeypatch.setattr("airflow.models.revoked_token.RevokedToken.is_revoked", classmethod(lambda cls, jti: False))
    am = api_app.init_auth_manager()
    yield am
    api_app._AuthManagerState.instance = None


def test_every_route_requires_a_user_allowed_to_read_dags(auth_manager, monkeypatch):
    """401 without credentials, 403 for a token Airflow did not sign, 200 for a viewer's token (bearer or
    the UI's `_token` cookie), through Airflow's own security dependency."""
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    monkeypatch.setenv("ML_PLATFORM_FLAVORS", str(ROOT / "flavors.yaml"))
    monkeypatch.setenv("ML_PLATFORM_IMAGE_VERSION", "1.2.3")
    monkeypatch.setenv("ML_PLATFORM_PIPELINE_DIRS", "/nonexistent")
    token = auth_manager.generate_jwt(SimpleAuthManagerUser(username="vic", role="viewer"))
    anonymous = TestClient(views.app)
    for route in ROUTES:
        assert anonymous.get(route).status_code == 401, route
        assert anonymous.get(route, headers={"Authorization": "Bearer not-a-jwt"}).status_code == 403, route
        assert anonymous.get(route, headers={"Authorization": f"Bearer {token}"}).status_code == 200, route
    assert TestClient(views.app, cookies={"_token": token}).get("/").status_code == 200


def test_the_page_shows_only_the_dags_the_user_may_read(auth_manager, bundle, monkeypatch):
    """A DAG-level permission (FAB's per-DAG access, a team) hides that pipeline, as the API's DAG list does."""
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    monkeypatch.setenv("ML_PLATFORM_FLAVORS", str(ROOT / "flavors.yaml"))
    shutil.copy(ROOT / "pipelines/churn_features.yaml", bundle / "pipelines/churn_features.yaml")
    manifest = json.loads((bundle / "bundle-manifest.json").read_text())
    manifest["files"]["pipelines/churn_features.yaml"] = {}
    (bundle / "bundle-manifest.json").write_text(json.dumps(manifest))
    token = auth_manager.generate_jwt(SimpleAuthManagerUser(username="vic", role="viewer"))
    c = TestClient(views.app, headers={"Authorization": f"Bearer {token}"})
    assert [p["dag_id"] for p in c.get("/pipelines").json()["pipelines"]] == ["churn_features", "example_etl"]
    real = type(auth_manager).is_authorized_dag

    def no_etl(self, *, method, user, access_entity=None, details=None):
        return (details is None or details.id != "example_etl") and real(
            self, method=method, user=user, access_entity=access_entity, details=details)

    monkeypatch.setattr(type(auth_manager), "is_authorized_dag", no_etl)
    assert [p["dag_id"] for p in c.get("/pipelines").json()["pipelines"]] == ["churn_features"]
    page = c.get("/").text
    assert "graph-churn_features" in page and "example_etl" not in page
