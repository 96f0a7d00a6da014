"""Against a real S3-compatible server (SeaweedFS): two `build.py deploy` at once, retention with `build.py gc`,
and config files that stay byte-identical through deploys and a rollback."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from platformctl.deploy.bundle import collect
from platformctl.deploy.deliver import deploy, read_pointer, rollback
from platformctl.deploy.store import S3Store
from tests.conftest import ROOT

PREFIX = "airflow/s3test"


def make_repo(root: Path, bucket: str, endpoint: str, tag: str, n: int = 5) -> Path:
    root.mkdir(parents=True)
    for item in ("pipelines", "templates", "flavors.yaml", "platform.yaml", "requirements", "build"):
        src = ROOT / item
        if src.is_dir():
            shutil.copytree(src, root / item)
        elif src.exists():
            shutil.copy(src, root / item)
    (root / "dags").mkdir()
    for i in range(n):
        (root / "dags" / f"extra_{i:04d}.py").write_text(f"# airflow dag helper {tag} {i}\n" + "x = 1\n" * 200)
    (root / "environments").mkdir()
    (root / "environments/s3test.yaml").write_text(yaml.safe_dump({
        "bundle": {"kind": "s3", "bucket": bucket, "prefix": PREFIX, "endpoint_url": endpoint}}))
    return root


def cli(repo: Path, s3, *args: str) -> subprocess.Popen:
    env = {"PLATFORM_ROOT": str(repo), "PATH": "/usr/bin:/bin", "AWS_ACCESS_KEY_ID": s3.access_key,
           "AWS_SECRET_ACCESS_KEY": s3.secret_key}
    return subprocess.Popen([sys.executable, str(ROOT / "build.py"), *args], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def done(p: subprocess.Popen) -> tuple[int, str, str]:
    out, err = p.communicate(timeout=300)
    return p.returncode, out, err


def test_seaweedfs_honours_conditional_writes(s3_env, bucket):
    assert S3Store(bucket, endpoint_url=s3_env.endpoint).conditional_writes()


def test_two_deploys_started_together_exactly_one_wins(s3_env, bucket, tmp_path):
    store = S3Store(bucket, endpoint_url=s3_env.endpoint)
    a = make_repo(tmp_path / "a", bucket, s3_env.endpoint, "a", n=400)
    b = make_repo(tmp_path / "b", bucket, s3_env.endpoint, "b", n=400)
    base = make_repo(tmp_path / "base", bucket, s3_env.endpoint, "base")
    assert done(cli(base, s3_env, "deploy", "--env", "s3test"))[0] == 0
    procs = [cli(a, s3_env, "deploy", "--env", "s3test"), cli(b, s3_env, "deploy", "--env", "s3test")]
    results = [done(p) for p in procs]
    codes = sorted(r[0] for r in results)
    assert codes == [0, 23], results
    live = read_pointer(store, PREFIX)
    winner = next(r for r in results if r[0] == 0)
    loser = next(r for r in results if r[0] == 23)
    assert live["version"] in winner[1]
    assert store.get(f"{live['prefix']}/bundle-manifest.json")  # the pointer names a complete version
    err = loser[2].strip().splitlines()
    assert len(err) == 1 and f"another deploy or rollback made {live['version']} live" in err[0], loser[2]


def test_gc_after_n_plus_5_deploys_keeps_n_and_the_protected_ones(s3_env, bucket, tmp_path):
    store = S3Store(bucket, endpoint_url=s3_env.endpoint)
    keep = 4
    repo = make_repo(tmp_path / "repo", bucket, s3_env.endpoint, "r", n=3)
    shipped = []
    for i in range(keep + 5):
        (repo / "dags/extra_0000.py").write_text(f"# airflow dag helper {i}\n")
        shipped.append(deploy(store, PREFIX, collect(repo)).version)
    rollback(store, PREFIX, shipped[0])  # live: the oldest; rollback target: the newest
    code, out, err = done(cli(repo, s3_env, "gc", "--env", "s3test", "--keep", str(keep)))
    assert code == 0, out + err
    left = {k.split("/")[3] for k in store.list(f"{PREFIX}/bundles/")}
    assert left == {shipped[0], *shipped[-(keep - 1):]}, out  # live (newest switch) + the next keep-1
    assert len(left) == keep and f"kept {shipped[0]}: live" in out and f"kept {shipped[-1]}: rollback target" in out
    code, out, _ = done(cli(repo, s3_env, "gc", "--env", "s3test", "--keep", "1"))
    left = {k.split("/")[3] for k in store.list(f"{PREFIX}/bundles/")}
    assert left == {shipped[0], shipped[-1]}, out  # N=1 + the protected rollback target


def test_config_is_byte_identical_through_deploys_and_a_rollback(s3_env, bucket, tmp_path):
    repo = make_repo(tmp_path / "repo", bucket, s3_env.endpoint, "r", n=2)
    files = [repo / "deploy/s3test/values.yaml", repo / "deploy/s3test/airflow.env"]
    assert done(cli(repo, s3_env, "deploy", "--env", "s3test"))[0] == 0
    first = [f.read_bytes() for f in files]
    for i in range(2):
        (repo / "dags/extra_0001.py").write_text(f"# airflow dag helper changed {i}\n")
        code, out, err = done(cli(repo, s3_env, "deploy", "--env", "s3test"))
        assert code == 0 and " live at " in out, out + err
        assert [f.read_bytes() for f in files] == first
    code, out, err = done(cli(repo, s3_env, "rollback", "--env", "s3test"))
    assert code == 0 and "no config change" in out, out + err
    assert [f.read_bytes() for f in files] == first
    values = yaml.safe_load(files[0].read_text())
    assert values["dagProcessor"]["dagBundleConfigList"][0]["kwargs"]["prefix"] == PREFIX
