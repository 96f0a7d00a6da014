"""Fixtures shared by the integration tests at this level."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.helpers import build_cache_ids, build_without_cache, remove_build_cache, working_tree_copy


@pytest.fixture
def project_copy(tmp_path: Path) -> Path:
    """The project as it is in the working tree, as a git repository of its own (the version comes from git)."""
    return working_tree_copy(tmp_path / "repo")


@pytest.fixture
def uncached_build(docker):
    """build_without_cache, and the BuildKit cache records the test made removed after it (its images are
    removed by then). An uncached build of make build's own steps leaves second results for their cache
    keys (same instructions and inputs, other layer digests), and BuildKit then takes either in a later
    build: the dependency layers would differ after a plugin edit (test_image_checks_reuse) and a push
    would upload the venv again."""
    before = build_cache_ids(docker)
    yield build_without_cache
    left = remove_build_cache(docker, build_cache_ids(docker) - before)
    assert not left, f"build cache records of the uncached builds still there: {sorted(left)}"
