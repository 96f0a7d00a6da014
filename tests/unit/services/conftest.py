"""Fixtures of the service tests: the mini project of the deploy tests."""

from tests.unit.deploy.test_plan import proj  # noqa: F401 - a fixture
