"""Fixtures shared by the integration tests at this level."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.helpers import working_tree_copy


@pytest.fixture
def project_copy(tmp_path: Path) -> Path:
    """The project as it is in the working tree, as a git repository of its own (the version comes from git)."""
    return working_tree_copy(tmp_path / "repo")
