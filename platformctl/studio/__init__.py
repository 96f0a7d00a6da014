"""The pipeline studio: a local web app showing pipelines as graphs and editing their YAML by operations."""
