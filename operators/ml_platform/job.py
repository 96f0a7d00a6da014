"""JobOperator: every ML job is a container image run with a named resource flavor.

    from ml_platform.job import JobOperator
    JobOperator(task_id="train", docker_image="registry/ml/churn:1.4.2", resource_flavor="gpu-a100",
                command=["python", "-m", "churn.train"], env={"EPOCHS": "10"})

The backend is chosen by configuration: ML_PLATFORM_BACKEND=kubernetes (production, the cncf.kubernetes
provider's KubernetesPodOperator) or docker (one machine, the docker provider's DockerOperator), or an
explicit backend= argument. Bad inputs fail when the DAG is parsed, naming the DAG, task and fix.
"""

from __future__ import annotations

import os
from typing import Any

from .errors import JobSpecError
from .spec import check_image, connection_env, current_dag_id, resolve_job  # noqa: F401 - the public names

BACKEND_ENV = "ML_PLATFORM_BACKEND"
BACKENDS = ("kubernetes", "docker")


def JobOperator(*, backend: str | None = None, **kwargs: Any):  # noqa: N802 - reads as the operator class
    """Create the job with the configured backend (see module docstring)."""
    backend = backend or os.environ.get(BACKEND_ENV, "kubernetes")
    if backend == "kubernetes":
        from .backends.kubernetes import KubernetesJobOperator

        return KubernetesJobOperator(**kwargs)
    if backend == "docker":
        from .backends.docker import DockerJobOperator

        return DockerJobOperator(**kwargs)
    raise JobSpecError(f"backend '{backend}' is not one of {', '.join(BACKENDS)} (set {BACKEND_ENV})")

