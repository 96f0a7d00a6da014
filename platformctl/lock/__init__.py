"""Dependency locking: requirements/*.in -> hashed requirements/<set>-py<XY>.txt."""
