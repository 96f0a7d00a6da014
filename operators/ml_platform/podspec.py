"""What each job would really get, built by the providers themselves (run inside the image by `make plan`).

    docker run --rm -i --entrypoint python <image> -m ml_platform.podspec < request.json

request: {"flavors_yaml": "<text of flavors.yaml>", "allowed": [..] | null,
          "jobs": [{"key": "<file>:<job>", "dag_id": ..., "task_id": ..., "image": ..., "flavor": ...}]}
answer (stdout, JSON): {"jobs": {"<key>": {"pod": <the V1Pod KubernetesPodOperator.build_pod_request_obj
(dry_run=True) builds, serialized as the API server reads it>, "docker": {"nano_cpus", "mem_limit",
"memswap_limit", "gpus"}} | {"error": "<one line>"}}}

The pod comes from the cncf.kubernetes provider's own builder (dry_run=True: no cluster, no hook); the
docker limits are the ones DockerJobOperator puts on the container (a hard CPU quota, not cpu_shares).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile


_ENV = ("ML_PLATFORM_FLAVORS", "ML_PLATFORM_ALLOWED_FLAVORS")


def build(request: dict) -> dict:
    """The answer for one request; the process environment is as it was afterwards."""
    saved = {k: os.environ.get(k) for k in _ENV}
    try:
        return _build(request)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _build(request: dict) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        f.write(request["flavors_yaml"])
    os.environ["ML_PLATFORM_FLAVORS"] = f.name
    if request.get("allowed") is None:
        os.environ.pop("ML_PLATFORM_ALLOWED_FLAVORS", None)
    else:
        os.environ["ML_PLATFORM_ALLOWED_FLAVORS"] = ",".join(request["allowed"])
    from airflow.sdk import DAG
    from kubernetes.client import ApiClient

    from .backends.docker import docker_limits
    from .backends.kubernetes import KubernetesJobOperator
    from .errors import PlatformConfigError
    from .flavors import load_catalog

    api = ApiClient()
    out: dict = {}
    try:
        for job in request["jobs"]:
            try:
                with DAG(job["dag_id"], schedule=None):
                    op = KubernetesJobOperator(task_id=job["task_id"], docker_image=job["image"],
                                               resource_flavor=job["flavor"])
                pod = api.sanitize_for_serialization(op.build_pod_request_obj(dry_run=True))
                pod.setdefault("apiVersion", "v1")
                pod.setdefault("kind", "Pod")
                limits = docker_limits(load_catalog().get(job["flavor"]))
                gpus = sum(d.get("Count", 0) for d in limits.get("device_requests", []) or [])
                out[job["key"]] = {"pod": pod, "docker": {
                    "nano_cpus": limits["nano_cpus"], "mem_limit": limits["mem_limit"],
                    "memswap_limit": limits["mem_limit"], "gpus": gpus}}
            except PlatformConfigError as exc:
                out[job["key"]] = {"error": str(exc)}
    finally:
        os.unlink(f.name)
    return {"jobs": out}


def main() -> int:
    request = json.load(sys.stdin)
    answer, sys.stdout = sys.stdout, sys.stderr  # Airflow's task logger writes to stdout: keep it for JSON
    try:
        result = build(request)
    finally:
        sys.stdout = answer
    json.dump(result, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
