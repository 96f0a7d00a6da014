"""A stack that does not become healthy says what it died of: the first exception line of the services' logs
(found rehearsing Airflow 3.2.2, whose DAG processor could not import the bundle class)."""

from __future__ import annotations

from platformctl.stack.compose import first_exception

LOGS = """\
postgres-1       | 2026-12-06 17:49:03.731 UTC [1] LOG:  database system is ready to accept connections
triggerer-1      | 2026-12-06T17:49:24.638314Z [info     ] Application startup complete.  [uvicorn.error] loc=on.py:62
dag-processor-1  |   File "/opt/venv/lib/python3.11/site-packages/ml_platform/bundle.py", line 34, in <module>
dag-processor-1  |     from airflow.dag_processing.bundles.base import BaseDagBundle, BundleVersion
dag-processor-1  | ImportError: cannot import name 'BundleVersion' from 'airflow.dag_processing.bundles.base'
scheduler-2      | sqlalchemy.exc.OperationalError: (psycopg2.OperationalError) connection refused
"""


def test_the_first_exception_line_names_its_service():
    assert first_exception(LOGS) == ("dag-processor: ImportError: cannot import name 'BundleVersion' from "
                                     "'airflow.dag_processing.bundles.base'")


def test_a_dotted_exception_type_counts_and_info_lines_do_not():
    only_db = "\n".join(ln for ln in LOGS.splitlines() if not ln.startswith("dag-processor"))
    assert first_exception(only_db) == (
        "scheduler: sqlalchemy.exc.OperationalError: (psycopg2.OperationalError) connection refused")
    assert first_exception("api-server-1 | [info] Uvicorn running\npostgres-1 | LOG: ready\n") is None
