"""Local backend: the docker provider's DockerOperator, with the flavor as real container limits.

DockerOperator(cpus=...) only sets cpu_shares, a relative weight; the flavor's CPU limit must be a
hard quota, so the Docker API client is wrapped to add NanoCpus (and no swap beyond the memory limit).
"""

from __future__ import annotations

import json
import os
from functools import cached_property
from typing import Any

from airflow.providers.docker.operators.docker import DockerOperator
from docker.types import DeviceRequest

from ..flavors import Flavor
from ..spec import connection_env, current_dag_id, resolve_job
from ..links import FlavorLink
from ..quantities import cpu_millicores, memory_bytes


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


def docker_limits(flavor: Flavor) -> dict[str, Any]:
    out: dict[str, Any] = {
        "nano_cpus": cpu_millicores(flavor.cpu.limit) * 1_000_000,
        "mem_limit": memory_bytes(flavor.memory.limit),
    }
    if flavor.gpu:
        out["device_requests"] = [DeviceRequest(count=flavor.gpu.count, capabilities=[["gpu"]])]
    return out


class DockerJobOperator(DockerOperator):
    operator_extra_links = (FlavorLink(),)

    def __init__(self, *, task_id: str, docker_image: str, resource_flavor: str,
                 command: list[str] | None = None, arguments: list[str] | None = None,
                 env: dict[str, str] | None = None, secrets_from_connections: dict[str, str] | None = None,
                 **kwargs: Any) -> None:
        flavor = resolve_job(task_id, current_dag_id(kwargs), docker_image, resource_flavor)
        limits = docker_limits(flavor)
        kwargs.setdefault("docker_url", os.environ.get("DOCKER_HOST", "unix://var/run/docker.sock"))
        kwargs.setdefault("mount_tmp_dir", False)  # Airflow may itself run in a container
        kwargs.setdefault("auto_remove", "success")
        labels = {"ml-platform/flavor": resource_flavor, "ml-platform/task": task_id,
                  **(kwargs.pop("labels", None) or {})}
        cmd = [*(command or []), *(arguments or [])] or None
        super().__init__(
            task_id=task_id, image=docker_image, command=cmd, environment=dict(env or {}),
            mem_limit=limits["mem_limit"], device_requests=limits.get("device_requests"),
            cpus=cpu_millicores(flavor.cpu.request) / 1000, labels=labels, **kwargs,
        )
        self.docker_image = docker_image
        self.resource_flavor = resource_flavor
        self.nano_cpus = limits["nano_cpus"]
        self.secrets_from_connections = dict(secrets_from_connections or {})

    @cached_property
    def cli(self):
        return _LimitedClient(DockerOperator.cli.fget(self), self.nano_cpus, self.mem_limit)

    def execute(self, context):
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
