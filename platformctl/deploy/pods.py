"""Per job, the resources it would really get: computed inside the image that would go out.

platformctl never imports Airflow, so the pod is built where Airflow is: `ml_platform.podspec` runs in the
image (engine.run, no network, nothing written) and answers with the V1Pod the cncf.kubernetes provider's
own builder makes (build_pod_request_obj(dry_run=True)) and the limits DockerJobOperator sets. The pods are
then validated here with kubernetes-validate against the Kubernetes API schema.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..engine import ContainerEngine

K8S_SCHEMA_VERSION = "1.37.0"  # the newest schema kubernetes-validate ships offline


@dataclass
class JobResources:
    key: str
    fragment: dict | None  # resources, nodeSelector, tolerations, priorityClassName
    docker: dict | None  # nano_cpus, mem_limit, memswap_limit, gpus
    valid: bool | None  # the whole pod validated against the Kubernetes schema
    error: str | None = None


@dataclass
class ResourcesResult:
    computed: bool
    reason: str | None  # why not computed
    jobs: dict[str, JobResources]


def fragment(pod: dict) -> dict:
    spec = pod.get("spec") or {}
    c = (spec.get("containers") or [{}])[0]
    out = {"resources": c.get("resources") or {}}
    for k in ("nodeSelector", "tolerations", "priorityClassName"):
        if spec.get(k):
            out[k] = spec[k]
    return out


def validate_pod(pod: dict) -> str | None:
    """None when the pod is valid for the Kubernetes API, else the first problem."""
    import kubernetes_validate

    try:
        kubernetes_validate.validate(pod, K8S_SCHEMA_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        return f"{'.'.join(str(p) for p in exc.path)}: {exc.message}"
    return None


def image_missing(engine: ContainerEngine, image: str) -> str | None:
    """None when the local engine has the image, else why not."""
    if engine.image_id(image) is not None:
        return None
    if not engine.answers():
        return f"the Docker engine is not reachable through {engine.cli}"
    return f"image {image} is not in the local engine (run make build, or docker pull it)"


def in_image(engine: ContainerEngine | None, image: str | None, root: Path, jobs: list[dict],
             allowed: list[str] | None, *, timeout: int = 300) -> ResourcesResult:
    """Run ml_platform.podspec in `image` for `jobs` ({key, dag_id, task_id, image, flavor})."""
    if not jobs:
        return ResourcesResult(True, None, {})
    if engine is None:
        return ResourcesResult(False, "no Docker engine to run the image's pod builder in", {})
    if not image:
        return ResourcesResult(False, "no image would go out (run make build)", {})
    missing = image_missing(engine, image)
    if missing:
        return ResourcesResult(False, missing, {})
    request = {"flavors_yaml": (root / "flavors.yaml").read_text(), "allowed": allowed, "jobs": jobs}
    p = engine.run(image, ["-m", "ml_platform.podspec"], entrypoint="python", network="none",
                   input=json.dumps(request), timeout=timeout)
    if p.returncode != 0:
        last = (p.stderr.strip().splitlines() or ["no output"])[-1]
        if "No module named ml_platform.podspec" in p.stderr:
            return ResourcesResult(False, f"image {image} predates ml_platform.podspec (rebuild it)", {})
        return ResourcesResult(False, f"the pod builder failed in {image}: {last}", {})
    answer = json.loads(p.stdout)["jobs"]
    out = {}
    for key, a in answer.items():
        if "error" in a:
            out[key] = JobResources(key, None, None, None, a["error"])
            continue
        problem = validate_pod(a["pod"])
        out[key] = JobResources(key, fragment(a["pod"]), a["docker"], problem is None, problem)
    return ResourcesResult(True, None, out)
