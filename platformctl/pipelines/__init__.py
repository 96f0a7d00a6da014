"""YAML pipelines: load safely, validate, render into plain Python DAG files through Jinja."""
