"""make plan against a real folder store: changes, no changes after deploy, refused, nothing written."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from platformctl import cli
from platformctl.config import load_config
from platformctl.deploy.live import resolve_environment
from platformctl.deploy.plan import lines, make_plan
from platformctl.errors import PLAN_CHANGES, ConfigError, PlanRefused
from tests.conftest import ROOT

GIT = ["git", "-c", "user.name=t", "-c", "user.email=t@localhost"]
COPY = ["platform.yaml", "flavors.yaml", "pipelines", "templates", "dags", "environments", "requirements"]


def mini_project(dst: Path) -> Path:
    """The shipped pipelines, flavors, environments and DAGs in a git repository of their own."""
    dst.mkdir()
    for rel in COPY:
        src = ROOT / rel
        (shutil.copytree(src, dst / rel) if src.is_dir() else shutil.copy2(src, dst / rel))
    (dst / "environments" / "tight.yaml").write_text(
        "description: only small jobs\nbundle: {kind: local, path: .platform/bundles/tight}\n"
        "allowed_flavors: [cpu-small]\nallowed_images: [ml-platform/]\n")
    subprocess.run(["git", "init", "-q"], cwd=dst, check=True)
    subprocess.run(["git", "add", "-A"], cwd=dst, check=True)
    subprocess.run([*GIT, "commit", "-qm", "init"], cwd=dst, check=True)
    (dst / "build").mkdir()  # a local build (not in git, as in a clone): deploy's config names its image
    (dst / "build" / "build-record.json").write_text(json.dumps(
        {"tags": ["ml-platform-airflow:0.1.0-dev.1"], "digest": None, "image_id": "sha256:local"}))
    return dst


def snapshot(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in root.rglob("*") if p.is_file() and ".git" not in p.parts}


@pytest.fixture
def proj(tmp_path, monkeypatch) -> Path:
    root = mini_project(tmp_path / "proj")
    monkeypatch.setenv("PLATFORM_ROOT", str(root))
    for var in ("REGISTRY", "PYTHON", "BASE_IMAGE", "DOCKER"):
        monkeypatch.delenv(var, raising=False)
    return root


def plan_of(root: Path, env: str = "local", **kw):
    return make_plan(root, load_config(root, {}), resolve_environment(root, env), resources=False, **kw)


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    rc = cli.main(list(args))
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_never_deployed_is_all_new_and_changes(proj):
    p = plan_of(proj)
    assert p.verdict == "changes" and p.exit_code == PLAN_CHANGES == 50
    assert p.bundle["live_version"] is None
    assert "dags/example_etl.py" in p.bundle["added"] and "pipelines/example_etl.yaml" in p.bundle["pipelines_added"]
    assert any("not deployed yet" in n for n in p.notes)


def test_after_deploy_the_plan_has_no_changes(proj, capsys):
    rc, _, err = run_cli(capsys, "deploy", "--env", "local")
    assert rc == 0, err
    p = plan_of(proj)
    assert (p.verdict, p.exit_code) == ("no changes", 0), lines(p)
    assert p.bundle["live_version"] == p.bundle["next_version"]
    assert not (p.bundle["added"] or p.bundle["changed"] or p.bundle["removed"])


def test_flavor_change_is_named_per_job_and_nothing_is_written(proj, capsys):
    assert run_cli(capsys, "deploy", "--env", "local")[0] == 0
    etl = proj / "pipelines" / "example_etl.yaml"
    etl.write_text(etl.read_text().replace("resource_flavor: cpu-medium", "resource_flavor: cpu-large"))
    (proj / "pipelines" / "new_one.yaml").write_text((proj / "pipelines" / "example_failing.yaml").read_text()
                                                     .replace("name: example_failing", "name: new_one"))
    before = snapshot(proj)
    rc, out, _ = run_cli(capsys, "plan", "--env", "local", "--no-resources")
    assert rc == 50
    assert snapshot(proj) == before  # dags/ is stale, but plan renders in memory: no file written or changed
    assert "  ~ dags/example_etl.py" in out and "  ~ pipelines/example_etl.yaml" in out
    assert "  + dags/new_one.py" in out and "pipelines added: pipelines/new_one.yaml" in out
    assert "job pipelines/example_etl.yaml jobs.train: flavor cpu-medium -> cpu-large" in out


def test_refused_plan_names_every_forbidden_job(proj, capsys):
    rc, out, err = run_cli(capsys, "plan", "--env", "tight", "--no-resources", "--json")
    assert rc == PlanRefused.exit_code == 51
    data = json.loads(out)
    assert data["verdict"] == "refused" and data["exit_code"] == 51
    bad = {(v["file"], v["job"]) for v in data["policy"]}
    assert ("pipelines/example_etl.yaml", "train") in bad  # cpu-medium
    assert ("pipelines/churn_model.yaml", "train") in bad  # cpu-large
    assert any("uses image 'registry.local/ml/churn:1.4.2'" in v["reason"] for v in data["policy"])
    assert "refused" in err and err.count("\n") == 1
    # the same rules as deploy: deploy refuses too
    assert run_cli(capsys, "deploy", "--env", "tight")[0] == 22


def test_gate_refused_passes_changes_and_fails_refusals(proj, capsys):
    assert run_cli(capsys, "plan", "--env", "local", "--no-resources", "--fail-on", "refused")[0] == 0
    assert run_cli(capsys, "plan", "--env", "tight", "--no-resources", "--fail-on", "refused")[0] == 51


def test_unknown_environment_did_you_mean(proj):
    with pytest.raises(ConfigError) as exc:
        resolve_environment(proj, "prd")
    assert "did you mean 'prod'?" in exc.value.one_line() and "known: dev, prod, tight, local" in exc.value.one_line()


def test_promote_plan_uses_the_release_image(proj, capsys):
    assert run_cli(capsys, "deploy", "--env", "local")[0] == 0
    (proj / "releases").mkdir()
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=proj, capture_output=True, text=True).stdout.strip()
    (proj / "releases" / "1.0.0.json").write_text(json.dumps({
        "version": "1.0.0", "repository": "127.0.0.1:5000/ml-platform/airflow", "digest": "sha256:" + "a" * 64,
        "commit": head}))
    p = plan_of(proj, version="1.0.0")
    assert p.image["changed"] and p.image["next"]["digest"] == "sha256:" + "a" * 64
    assert p.image["pins"] is None and "live image's commit is unknown" in p.image["pins_note"]
    assert p.bundle["live_version"] != p.bundle["next_version"]  # the bundle is rebuilt for the new image
    assert not p.bundle["changed"] and p.exit_code == 50
