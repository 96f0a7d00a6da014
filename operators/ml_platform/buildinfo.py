"""The image's build record and the macros the platform plugin registers (Airflow-free).

The Dockerfile's last ENV sets the build (the same values as its OCI labels): environment, not a file,
so reading it starts nothing.
"""

from __future__ import annotations

import os

BUILD_ENV = {
    "version": "ML_PLATFORM_IMAGE_VERSION",
    "revision": "ML_PLATFORM_IMAGE_REVISION",
    "created": "ML_PLATFORM_IMAGE_CREATED",
    "airflow_version": "ML_PLATFORM_AIRFLOW_VERSION",
    "python_version": "ML_PLATFORM_PYTHON_VERSION",
    "lock_fingerprint": "ML_PLATFORM_LOCK_FINGERPRINT",
}


def build_record() -> dict | None:
    """The image's build (version, revision, created, Airflow/Python versions, lock fingerprint), or None
    outside an image built by make build."""
    if not os.environ.get(BUILD_ENV["version"]):
        return None
    return {key: os.environ.get(var, "") for key, var in BUILD_ENV.items()}


def image_version() -> str:
    """Macro {{ macros.ml_platform.image_version() }}: the platform image's version."""
    return os.environ.get(BUILD_ENV["version"]) or "unknown"


def flavor_limits(name: str) -> dict:
    """Macro {{ macros.ml_platform.flavor_limits('cpu-small') }}: a flavor's limits, for job arguments."""
    from .flavors import load_catalog

    f = load_catalog().get(name)
    return {"cpu": f.cpu.limit, "memory": f.memory.limit, "gpu": f.gpu.count if f.gpu else 0}
