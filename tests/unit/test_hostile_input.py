"""Hostile and broken input (issue 20), written as the probes were: the hostile file in a temporary
repository, `python build.py <command>` run on it, then the one line on stderr and the exit code it must
give, nothing written outside the repository and the trap file never created."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ("platform.yaml", "flavors.yaml", "templates", "pipelines", "environments")


def cli(repo: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHON", "BASE_IMAGE", "BASE_MODE", "CA_BUNDLE",
                                                           "ML_PLATFORM_FLAVORS")}
    env["PLATFORM_ROOT"] = str(repo)
    return subprocess.run([sys.executable, str(ROOT / "build.py"), *args], capture_output=True, text=True, env=env,
                          timeout=timeout, cwd=repo)


def listing(base: Path, skip: Path) -> set[str]:
    """Every path under base except those under skip (the repository)."""
    out = set()
    for dirpath, dirnames, filenames in os.walk(base):
        if Path(dirpath) == skip:
            dirnames.clear()
            continue
        out.update(os.path.join(dirpath, n) for n in dirnames + filenames)
    return out


@pytest.fixture
def sandbox(tmp_path):
    """(repo, trap dir): the repository's user files in tmp/repo; tmp/outside must stay as it is."""
    repo, outside = tmp_path / "repo", tmp_path / "outside"
    repo.mkdir()
    outside.mkdir()
    for name in SHIPPED:
        src = ROOT / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, repo / name)
    before = listing(tmp_path, repo)
    yield repo, outside
    assert listing(tmp_path, repo) == before, "something was written outside the repository"


def one_line(p: subprocess.CompletedProcess, code: int, *starts: str) -> str:
    assert "Traceback" not in p.stderr, p.stderr
    assert p.returncode == code, (p.returncode, p.stdout, p.stderr)
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1, p.stderr
    for s in starts:
        assert s in lines[0], lines[0]
    return lines[0]


def env_file(repo: Path, name: str, extra: str, bucket: str = "ml-platform-dags", kind: str = "s3") -> None:
    store = f"bundle: {{kind: s3, bucket: '{bucket}', prefix: airflow/{name}, endpoint_url: 'http://127.0.0.1:9'}}\n"
    if kind == "local":
        store = "bundle: {kind: local}\n"
    (repo / "environments" / f"{name}.yaml").write_text(store + extra)


# 1. writes outside the repository / format-string evaluation -------------------------------------------

@pytest.mark.parametrize("field,value,words", [
    ("helm_values", "{outside}/x-{{env}}.yaml", "is absolute"),
    ("env_file", "../outside/x-{{env.__class__.__name__}}", "may use only {env} as a placeholder"),
    ("env_file", "../outside/x-{{env}}.env", "has a '..' component"),
    ("helm_values", "{outside}/{{0}}.yaml", "may use only {env}"),
])
def test_managed_paths_outside_the_repo_are_refused_before_anything_is_delivered(sandbox, field, value, words):
    repo, outside = sandbox
    env_file(repo, "evil", f"managed: {{{field}: '{value.format(outside=outside)}'}}\n", kind="local")
    line = one_line(cli(repo, "deploy", "--env", "evil"), 14, f"environments/evil.yaml:2: managed.{field}", words)
    assert "repository" in line or "placeholder" in line
    assert not (repo / ".platform").exists() and not (repo / "dags").exists()  # nothing rendered or delivered


def test_a_symlink_out_of_the_repo_is_refused(sandbox):
    repo, outside = sandbox
    (repo / "deploy").symlink_to(outside, target_is_directory=True)
    env_file(repo, "evil", "", kind="local")
    one_line(cli(repo, "deploy", "--env", "evil"), 14, "managed.helm_values", "outside the repository")
    assert list(outside.iterdir()) == []


def test_a_local_bundle_folder_outside_the_repo_is_refused(sandbox):
    repo, outside = sandbox
    (repo / "environments" / "evil.yaml").write_text(f"bundle: {{kind: local, path: '{outside}/bundles'}}\n")
    one_line(cli(repo, "deploy", "--env", "evil"), 14, "environments/evil.yaml:1: bundle.path", "is absolute")


def test_the_default_paths_still_deploy_inside_the_repo(sandbox):
    repo, _ = sandbox
    (repo / "build").mkdir()  # a deploy needs a built image: its config names it
    (repo / "build" / "build-record.json").write_text(
        '{"tags": ["ml-platform-airflow:0.1.0-dev.1"], "digest": null, "image_id": "sha256:local"}')
    p = cli(repo, "deploy", "--env", "local")
    assert p.returncode == 0, p.stderr
    assert (repo / "deploy/local/values.yaml").is_file() and (repo / "deploy/local/airflow.env").is_file()
    assert "managed Airflow config: deploy/local/values.yaml, deploy/local/airflow.env" in p.stdout


def test_an_environment_name_with_a_path_is_refused(sandbox):
    repo, _ = sandbox
    one_line(cli(repo, "deploy", "--env", "../../etc/passwd"), 2, "is not an environment name")


# 2. deep dependency chains, 3. (ordering speed: bench/render.py) ----------------------------------------

def chain(n: int, cycle: bool = False) -> str:
    """j0000 depends on j0001 ... : the walk from the first name in sort order goes n deep."""
    head = ("version: 1\ndag: {name: deep}\n"
            "defaults: {docker_image: registry.local/ml/x:1.0.0, resource_flavor: cpu-small}\njobs:\n")
    body = "".join(f"  j{i:04d}: {{command: [run], depends_on: [j{i + 1:04d}]}}\n" for i in range(n - 1))
    last = f"  j{n - 1:04d}: {{command: [run]{', depends_on: [j0000]' if cycle else ''}}}\n"
    return head + body + last


def test_a_1200_job_chain_renders(sandbox):
    repo, _ = sandbox
    (repo / "pipelines" / "deep.yaml").write_text(chain(1200))
    p = cli(repo, "render")
    assert p.returncode == 0, p.stderr
    text = (repo / "dags" / "deep.py").read_text()
    assert text.index("task_id='j1199'") < text.index("task_id='j0000'")  # dependencies first


def test_a_1200_job_cycle_is_one_problem_line(sandbox):
    repo, _ = sandbox
    (repo / "pipelines" / "deep.yaml").write_text(chain(1200, cycle=True))
    p = cli(repo, "render")
    assert p.returncode == 11 and "Traceback" not in p.stderr, p.stderr
    problem, summary = p.stderr.strip().splitlines()
    assert problem.startswith("error: pipelines/deep.yaml:") and "dependency cycle: j0000 -> j0001" in problem
    assert summary.startswith("error: 1 problem(s) in 1 pipeline file(s)")


# 4. non-UTF-8 and huge files ----------------------------------------------------------------------------

@pytest.mark.parametrize("rel,command,where", [
    ("platform.yaml", ("lock-check",), "platform.yaml:2"),
    ("environments/dev.yaml", ("deploy", "--env", "dev"), "environments/dev.yaml:2"),
    ("flavors.yaml", ("render",), "flavors.yaml:2"),
])
def test_a_non_utf8_file_is_one_line_naming_the_file(sandbox, rel, command, where):
    repo, _ = sandbox
    (repo / rel).write_bytes(b"# caf\xc3\xa9\n# \xe9t\xe9 in latin-1\n" + (repo / rel).read_bytes())
    one_line(cli(repo, *command), 13, where, "is not UTF-8 text (byte 0xe9")


def test_a_50_mb_platform_yaml_is_refused_at_once(sandbox):
    repo, _ = sandbox
    with open(repo / "platform.yaml", "ab") as f:
        f.truncate(50 * 2**20)  # sparse: only the size matters, it is never read
    t0 = time.perf_counter()
    one_line(cli(repo, "lock-check"), 13, "platform.yaml: is 52428800 bytes; files like it are limited to 256 KiB")
    assert time.perf_counter() - t0 < 30  # was > 120 s and 2.8 GB


def test_a_fifo_is_refused_not_read(sandbox):
    repo, _ = sandbox
    (repo / "environments" / "dev.yaml").unlink()
    os.mkfifo(repo / "environments" / "dev.yaml")
    one_line(cli(repo, "deploy", "--env", "dev", timeout=60), 13, "environments/dev.yaml: is not a regular file")


# 5. flavor quantities -----------------------------------------------------------------------------------

@pytest.mark.parametrize("old,new,words", [
    ("gpu: {count: 1,", "gpu: {count: true,", "flavors.gpu-a100.gpu.count True is not a number of GPUs"),
    ("gpu: {count: 1,", "gpu: {count: 100000000000000000000,", "less than or equal to 64"),
    ('cpu: {request: "8", limit: "8"}', 'cpu: {request: "8", limit: "100000000000000000000000000"}',
     "is more than Kubernetes accepts"),
    ('cpu: {request: "8", limit: "8"}', 'cpu: {request: "8", limit: "5000"}', "more than one pod can get"),
    ("memory: {request: 64Gi, limit: 64Gi}", "memory: {request: 64Gi, limit: 100000000000000000000Ti}",
     "is more than Kubernetes accepts"),
])
def test_flavor_quantities_are_bounded(sandbox, old, new, words):
    repo, _ = sandbox
    text = (repo / "flavors.yaml").read_text()
    assert old in text
    (repo / "flavors.yaml").write_text(text.replace(old, new, 1))
    one_line(cli(repo, "render"), 2, "flavors.yaml:", words)


# 6. messages that name the real cause ----------------------------------------------------------------------

def test_a_large_pipeline_without_aliases_is_not_blamed_on_aliases(sandbox):
    repo, _ = sandbox
    jobs = "".join(f"  j{i:04d}: {{command: [r]}}\n" for i in range(10_000))  # 250 KB, under the size bound
    (repo / "pipelines" / "big.yaml").write_text("dag: {name: big}\njobs:\n" + jobs)
    p = cli(repo, "render")
    assert p.returncode == 11 and "Traceback" not in p.stderr
    problem = p.stderr.strip().splitlines()[0]
    assert "has more than 50000 values, the limit for one file" in problem and "alias" not in problem, problem


def test_a_bucket_name_with_a_space_is_one_line_from_the_schema(sandbox):
    repo, _ = sandbox
    env_file(repo, "evil", "", bucket="my bucket")
    one_line(cli(repo, "deploy", "--env", "evil"), 2, "environments/evil.yaml:1: bundle.bucket",
             "bucket name 'my bucket' may hold only lowercase letters")
    import json

    schema = json.loads((ROOT / "schemas" / "environment.schema.json").read_text())
    assert "pattern" in schema["$defs"]["BundleStoreConfig"]["properties"]["bucket"]


def test_rollback_to_a_path_is_refused_before_any_store_access(sandbox):
    repo, _ = sandbox
    env_file(repo, "dev2", "")  # an S3 store at 127.0.0.1:9: touching it would fail (exit 20), slowly
    t0 = time.perf_counter()
    one_line(cli(repo, "rollback", "--env", "dev2", "--to", "../../../etc"), 21,
             "TO='../../../etc' is not a bundle version")
    one_line(cli(repo, "rollback", "--env", "local", "--to", "../../../etc"), 21, "is not a bundle version")
    assert not (repo / ".platform").exists()
    assert time.perf_counter() - t0 < 60
