"""Build-and-ship side of the ML Airflow platform.

Runs on a laptop or CI runner. Imports no Airflow: it locks dependencies, builds
and ships the image, renders pipelines and delivers DAG bundles.
"""

__version__ = "0.1.0"
