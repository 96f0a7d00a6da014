"""Local backend: the docker provider's DockerOperator, with the flavor as real container limits.

DockerOperator(cpus=...) only sets cpu_shares, a relative weight; the flavor's CPU limit must be a
hard quota, so the Docker API client is wrapped to add NanoCpus (and no swap beyond the memory limit).

A task instance has at most one live job container. Each container is labelled with the task instance it
runs (dag_id, run_id, task_id, map_index, try_number); a try first stops and removes the running
containers of earlier tries of the same task instance (a worker that died leaves its job running), then
starts its own. on_kill (the task is stopped, or its worker shuts down) stops the container. Why stop and
not re-attach: docs/jobs.md.
"""

from __future__ import annotations

import json
import os
import logging
from functools import cached_property
from typing import Any

from airflow.providers.docker.operators.docker import DockerOperator
from docker.types import DeviceRequest

from ..flavors import Flavor
from ..quantities import cpu_millicores, memory_bytes
from ..spec import connection_env
from .base import Job, JobBackend


class _LimitedClient:
    """Delegates to the Docker API client; create_host_config gets the flavor's hard limits."""

    def __init__(self, client, nano_cpus: int, mem_bytes: int):
        self._client = client
        self._nano_cpus = nano_cpus
        self._mem = mem_bytes

    def create_host_config(self, *args, **kwargs):
        kwargs["nano_cpus"] = self._nano_cpus
        kwargs["mem_limit"] = self._mem
        kwargs["memswap_limit"] = self._mem
        return self._client.create_host_config(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._client, name)


log = logging.getLogger(__name__)

# the labels naming a task instance (and try) on its job container
TI_LABELS = ("dag-id", "run-id", "task-id", "map-index")
TRY_LABEL = "try-number"
LABEL_PREFIX = "ml-platform/"
STOP_TIMEOUT = 10  # seconds an earlier try's job gets after SIGTERM before SIGKILL


def task_instance_labels(ti) -> dict[str, str]:
    """The labels naming ti (and its try) on its job container: Docker label values are strings."""
    map_index = getattr(ti, "map_index", -1)
    values = {"dag-id": ti.dag_id, "run-id": ti.run_id, "task-id": ti.task_id,
              "map-index": str(-1 if map_index is None else map_index), TRY_LABEL: str(ti.try_number)}
    return {LABEL_PREFIX + k: str(v) for k, v in values.items()}


BUNDLE_VERSION_ENV = "ML_PLATFORM_BUNDLE_VERSION"


def bundle_version(ti) -> str | None:
    """The version of the DAG bundle the task runs from (a worker runs a DAG run's pinned version)."""
    bundle = getattr(ti, "bundle_instance", None)
    return getattr(bundle, "version", None) or None


def stop_earlier_tries(cli, labels: dict[str, str], *, timeout: int = STOP_TIMEOUT, logger=log) -> list[str]:
    """Stop and remove every running container of the task instance `labels` names (called before this
    try creates its own: any running one is an earlier try's, left by a lost worker). Returns the ids
    stopped. A container gone meanwhile is fine; any other engine error propagates: the try must not start
    a second live job."""
    from docker.errors import NotFound

    ti_filter = [f"{k}={labels[LABEL_PREFIX + k]}" for k in TI_LABELS]
    this_try = labels[LABEL_PREFIX + TRY_LABEL]
    stopped = []
    for c in cli.containers(filters={"label": [LABEL_PREFIX + f for f in ti_filter]}):  # running ones
        c_labels = c.get("Labels") or {}
        logger.warning("stopping job container %s of try %s of this task instance (left running by a lost "
                       "worker) before try %s starts", c["Id"][:12], c_labels.get(LABEL_PREFIX + TRY_LABEL, "?"),
                       this_try)
        try:
            cli.stop(c["Id"], timeout=timeout)
            cli.remove_container(c["Id"], force=True)
        except NotFound:
            pass
        stopped.append(c["Id"])
    return stopped


def docker_limits(flavor: Flavor) -> dict[str, Any]:
    out: dict[str, Any] = {
        "nano_cpus": cpu_millicores(flavor.cpu.limit) * 1_000_000,
        "mem_limit": memory_bytes(flavor.memory.limit),
    }
    if flavor.gpu:
        out["device_requests"] = [DeviceRequest(count=flavor.gpu.count, capabilities=[["gpu"]])]
    return out


class DockerJobOperator(JobBackend, DockerOperator):
    @classmethod
    def provider_arguments(cls, job: Job, kwargs: dict[str, Any]) -> dict[str, Any]:
        limits = docker_limits(job.flavor)
        kwargs.setdefault("docker_url", os.environ.get("DOCKER_HOST", "unix://var/run/docker.sock"))
        kwargs.setdefault("mount_tmp_dir", False)  # Airflow may itself run in a container
        kwargs.setdefault("auto_remove", "success")
        return dict(image=job.image, command=[*(job.command or []), *(job.arguments or [])] or None,
                    environment=job.env, mem_limit=limits["mem_limit"], device_requests=limits.get("device_requests"),
                    cpus=cpu_millicores(job.flavor.cpu.request) / 1000,
                    labels={"ml-platform/task": job.task_id, **job.labels}, **kwargs)

    @property
    def nano_cpus(self) -> int:
        return docker_limits(self.flavor)["nano_cpus"]

    @cached_property
    def cli(self):
        return _LimitedClient(DockerOperator.cli.fget(self), self.nano_cpus, self.mem_limit)

    def execute(self, context):
        ti = context["ti"]
        ti_labels = task_instance_labels(ti)
        self.labels = {**(self.labels or {}), **ti_labels}
        stop_earlier_tries(self.cli, ti_labels, logger=self.log)
        version = bundle_version(ti)
        if version:  # the DAG bundle version this try runs (the job can print or record it)
            self.environment = {**(self.environment or {}), BUNDLE_VERSION_ENV: version}
            self.labels[LABEL_PREFIX + "bundle-version"] = version
        if self.secrets_from_connections:
            self.private_environment = {**(self.private_environment or {}),
                                        **connection_env(self.secrets_from_connections)}
        result = super().execute(context)
        return json_list(result) if self.do_xcom_push else result


def json_list(result: Any) -> Any:
    """The job's result as a list when its last output line is a JSON list (what a job mapped over
    this one's output needs, as a Kubernetes job writes /airflow/xcom/return.json); else unchanged."""
    if isinstance(result, bytes):
        result = result.decode(errors="replace")
    if isinstance(result, str) and result.strip().startswith("["):
        try:
            value = json.loads(result)
        except ValueError:
            return result
        return value if isinstance(value, list) else result
    return result
