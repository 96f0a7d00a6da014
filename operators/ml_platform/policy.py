"""The platform's Airflow cluster policy, registered through the `airflow.policy` entry point
(operators/pyproject.toml): every rendered DAG's page shows its pipeline file, commit and YAML
(source_doc.py). A DAG that is not rendered from a pipeline is left as it is."""

from __future__ import annotations

from airflow.policies import hookimpl

from .source_doc import with_source


@hookimpl
def dag_policy(dag) -> None:
    fileloc = getattr(dag, "fileloc", None)
    if fileloc:
        dag.doc_md = with_source(dag.doc_md, fileloc)
