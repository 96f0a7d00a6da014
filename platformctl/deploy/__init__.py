"""Delivering DAG bundles: immutable versioned prefixes in a bundle store, a pointer switched last."""
