"""Example DAG: one JobOperator per default flavor (hand-written; YAML pipelines render their own DAGs).

Parses with either backend (ML_PLATFORM_BACKEND=kubernetes|docker); nothing runs at parse time.
"""

from __future__ import annotations

from airflow.sdk import DAG

from ml_platform.job import JobOperator

IMAGE = "local/python:3.11-slim-bookworm"

with DAG(dag_id="example_job_operator", schedule=None, catchup=False, tags=["ml-platform", "example"]):
    for flavor in ("cpu-small", "cpu-large", "mem-large", "gpu-a100"):
        JobOperator(
            task_id=f"job_{flavor.replace('-', '_')}",
            docker_image=IMAGE,
            resource_flavor=flavor,
            command=["python3", "-c", "import os; print('flavor', os.environ['FLAVOR'])"],
            env={"FLAVOR": flavor},
        )
