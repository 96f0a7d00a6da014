"""Fixtures of the deploy tests that run the in-image bundle class (ml_platform.bundle) over a folder store."""

from __future__ import annotations

from pathlib import Path

import pytest

from platformctl.deploy.store import LocalStore


@pytest.fixture
def storage(tmp_path, monkeypatch) -> Path:
    """The bundle storage folder Airflow gives the bundle class, in this test's own tmp dir (modules that run
    the bundle class use it on every test: pytestmark = pytest.mark.usefixtures("storage"))."""
    d = tmp_path / "bundle-storage"
    monkeypatch.setenv("AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_STORAGE_PATH", str(d))
    return d


@pytest.fixture
def store(tmp_path) -> LocalStore:
    """The folder store platformctl's deliver writes and the bundle class reads."""
    return LocalStore(tmp_path / "store")
