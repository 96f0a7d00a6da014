"""The local Airflow stack: compose project (up/down), locally built support images, pipeline runs."""
