"""Backends of JobOperator; each module imports its provider only when chosen."""
