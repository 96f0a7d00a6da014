"""One store factory: deploy, rollback, gc, plan and status open the same store for an environment, and a
folder store's `{env}` is substituted the same way for all of them (issue #33, defect 2: deploy wrote
stores/qa while plan and status read stores/{env})."""

from __future__ import annotations

import pytest

from platformctl.config import load_config
from platformctl.deploy import live, store
from platformctl.deploy.live import resolve_environment
from platformctl.status import status
from tests.unit.deploy.test_plan import mini_project, plan_of, run_cli


@pytest.fixture
def proj(tmp_path, monkeypatch):
    root = mini_project(tmp_path / "proj")
    monkeypatch.setenv("PLATFORM_ROOT", str(root))
    for var in ("REGISTRY", "PYTHON", "BASE_IMAGE", "DOCKER"):
        monkeypatch.delenv(var, raising=False)
    return root


class EmptyRegistry:
    """skopeo_factory and Skopeo in one: a registry with no tags (status reads the store regardless)."""

    def __call__(self):
        return self

    def tags(self, repo):
        return []

    def inspect(self, ref):
        return None


def test_plan_and_status_read_the_folder_deploy_wrote_for_an_env_path(proj, capsys):
    (proj / "environments" / "qa.yaml").write_text("bundle: {kind: local, path: 'stores/{env}'}\n")
    rc, out, err = run_cli(capsys, "deploy", "--env", "qa")
    assert rc == 0, err
    assert (proj / "stores" / "qa" / "current.json").is_file() and not (proj / "stores" / "{env}").exists()
    plan = plan_of(proj, "qa")
    assert plan.bundle["live_version"] is not None, plan.notes  # before: "qa is not deployed yet"
    assert plan.bundle["live_version"] == plan.bundle["next_version"]
    st = status(proj, load_config(proj, {}), EmptyRegistry(), ["qa"]).environments[0]
    assert st.deployed and st.bundle["version"] == plan.bundle["live_version"]
    assert not (proj / "stores" / "{env}").exists()  # reading never creates the unsubstituted folder


def test_one_factory():
    """live (plan, status) and the deploy commands take their store from store.open_store."""
    assert live.open_store is store.open_store
    import platformctl.commands.deploy as deploy_cmd

    assert not hasattr(deploy_cmd, "make_store")


def test_the_factory_substitutes_env_and_confines_the_folder(proj):
    qa = proj / "environments" / "qa.yaml"
    qa.write_text("bundle: {kind: local, path: 'stores/{env}/bundles'}\n")
    s = store.open_store(proj, resolve_environment(proj, "qa"))
    assert s.root == (proj / "stores" / "qa" / "bundles").resolve()
