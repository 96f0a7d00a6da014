"""make status / diff over folder stores, with a registry double (the real registry: tests/integration)."""

from __future__ import annotations

import json

import pytest

from platformctl import cli
from platformctl.config import collect_overrides, load_config
from platformctl.deploy.bundle import collect
from platformctl.deploy.deliver import deploy
from platformctl.deploy.live import open_store, resolve_environment
from platformctl.errors import RegistryUnavailable, StatusIncomplete
from platformctl.status import env_diff, status, status_lines
from tests.unit.deploy.test_plan import mini_project

A, B = "sha256:" + "a" * 64, "sha256:" + "b" * 64


class FakeRegistry:
    """tags and inspect, as Skopeo answers them, from a dict repo -> tag -> (digest, revision)."""

    def __init__(self, repos: dict, down: bool = False):
        self.repos, self.down = repos, down

    def __call__(self):
        return self

    def tags(self, repo):
        if self.down:
            raise RegistryUnavailable(f"list tags of {repo}: registry unavailable (connection refused)")
        return list(self.repos.get(repo, {}))

    def inspect(self, ref):
        repo, sep, what = ref.partition("@") if "@" in ref else ref.rpartition(":")
        for tag, (digest, rev) in self.repos.get(repo, {}).items():
            if what in (tag, digest):
                return {"digest": digest, "labels": {"org.opencontainers.image.revision": rev}}
        return None


@pytest.fixture
def proj(tmp_path, monkeypatch):
    root = mini_project(tmp_path / "proj")
    (root / "environments" / "stage.yaml").write_text(
        "bundle: {kind: local, path: .platform/bundles/stage}\nregistry: {repository: r/stage}\n")
    (root / "environments" / "qa.yaml").write_text("bundle: {kind: local, path: .platform/bundles/qa}\n")
    for f in ("dev.yaml", "prod.yaml", "tight.yaml"):
        (root / "environments" / f).unlink()
    monkeypatch.setenv("REGISTRY", "r/build")
    return root


def put(root, env: str, digest: str | None, commit: str = "c0ffee"):
    e = resolve_environment(root, env)
    return deploy(open_store(root, e), e.bundle.prefix, collect(root, image_digest=digest, commit=commit))


def one(root, reg, name: str):
    return next(e for e in status(root, load_config(root, collect_overrides([])), reg).environments if e.name == name)


def test_never_deployed_and_a_bundle_for_an_image_the_registry_lacks(proj):
    put(proj, "local", B)
    s = status(proj, load_config(proj, collect_overrides([])), FakeRegistry({"r/build": {"1.0.0": (A, "c1")}}))
    stage, local = (next(e for e in s.environments if e.name == n) for n in ("stage", "local"))
    assert stage.deployed is False and local.deployed is True and s.errors == []
    assert local.image["in_registry"] is False and "which r/build does not have" in local.flags[0]
    assert "  not deployed yet" in status_lines(s)


def test_a_bundle_built_for_another_image_than_the_promoted_release_is_flagged(proj):
    put(proj, "stage", A)
    reg = FakeRegistry({"r/stage": {"1.0.0": (A, "c1"), "1.1.0": (B, "c2")}, "r/build": {"1.0.0": (A, "c1")}})
    stage = one(proj, reg, "stage")
    assert stage.image["releases"] == ["1.0.0"] and stage.newest_release == {"version": "1.1.0", "digest": B}
    assert "was promoted to 1.1.0" in stage.flags[0] and "make deploy ENV=stage" in stage.flags[0]
    reg.repos["r/stage"].pop("1.1.0")
    stage = one(proj, reg, "stage")
    assert stage.flags == []


def test_drift_and_diff_between_two_environments(proj):
    put(proj, "qa", A, commit="c1")
    (proj / "pipelines" / "example_etl.yaml").write_text(
        (proj / "pipelines" / "example_etl.yaml").read_text().replace("cpu-medium", "cpu-large"))
    put(proj, "stage", A, commit="c2")
    reg = FakeRegistry({"r/stage": {"1.0.0": (A, "c1")}, "r/build": {"1.0.0": (A, "c1")}})
    s = status(proj, load_config(proj, collect_overrides([])), reg)
    d = s.drift[0]
    assert (d["from"], d["to"], d["same_bundle"], d["same_image"]) == ("qa", "stage", False, True)
    assert d["commits"]["known"] is False  # c1/c2 are not commits of this clone: said, not guessed
    diff = env_diff(proj, load_config(proj, collect_overrides([])), reg, "qa", "stage")
    assert diff["files"]["different"] == ["pipelines/example_etl.yaml"]
    assert diff["jobs"] == [{"file": "pipelines/example_etl.yaml", "job": "train", "from": ("cpu-medium",
                             "ml-platform/etl-job:0.1.0"), "to": ("cpu-large", "ml-platform/etl-job:0.1.0")}]
    assert {"field": "registry.repository", "from": None, "to": "r/stage"} in diff["config"]


def test_a_registry_outage_is_one_line_and_exit_52(proj, monkeypatch, capsys):
    """Issue 33, defect 5: every unreadable part was printed twice (inline, then as error: lines) and one
    registry outage once per environment: now once, naming the environments, and one line at the edge."""
    put(proj, "local", A)
    monkeypatch.setenv("PLATFORM_ROOT", str(proj))
    monkeypatch.setattr("platformctl.commands.status._factory", lambda cfg, auth: FakeRegistry({}, down=True))
    rc = cli.main(["status"])
    out, err = capsys.readouterr()
    assert rc == StatusIncomplete.exit_code == 52
    assert "local: " in out and "bundle b-" in out and "stage: " in out and "not deployed yet" in out
    assert (out + err).count("registry unavailable") == 1
    (line,) = [ln for ln in out.splitlines() if "unreadable" in ln]
    assert line.startswith("unreadable: registry docker.io (") and all(e in line for e in ("qa", "stage", "local"))
    assert err.splitlines() == ["error: 1 part(s) could not be read (listed above) (the rest above is what could "
                                "be read; fix the access and run it again)"]
    rc = cli.main(["status", "--json"])
    data = json.loads(capsys.readouterr().out)
    assert rc == 52 and data["environments"]["local"]["bundle"]["image_digest"] == A


def test_an_unreadable_store_is_listed_once(proj, monkeypatch, capsys):
    import platformctl.status as st
    from platformctl.errors import StoreError

    real = st.read_live

    def read_live(store, prefix):
        if "qa" in f"{prefix} {getattr(store, 'url', '')}":
            raise StoreError(f"cannot read {prefix}/current.json: access denied")
        return real(store, prefix)

    monkeypatch.setattr(st, "read_live", read_live)
    monkeypatch.setenv("PLATFORM_ROOT", str(proj))
    monkeypatch.setattr("platformctl.commands.status._factory", lambda cfg, auth: FakeRegistry({}))
    rc = cli.main(["status"])
    out, err = capsys.readouterr()
    assert rc == 52
    (line,) = [ln for ln in (out + err).splitlines() if "qa: bundle store" in ln]
    assert line.startswith("unreadable: qa: bundle store: ") and err.count("\n") == 1, out + err
