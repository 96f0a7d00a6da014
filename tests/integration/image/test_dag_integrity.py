"""Every DAG baked into the image imports with zero errors, with no connections or variables set."""

from __future__ import annotations

import pytest

from platformctl.image import checks


def parse_in_image(code_facts, folder: str, backend: str) -> dict:
    """The probe's DagBag of folder with ML_PLATFORM_BACKEND=backend (AIRFLOW__CORE__UNIT_TEST_MODE=True)."""
    return code_facts[f"dagbag:{folder}:{backend}"]


@pytest.mark.parametrize("backend", ["kubernetes", "docker"])
def test_every_baked_dag_imports_without_errors(code_facts, root, backend):
    result = parse_in_image(code_facts, "/opt/airflow/dags", backend)
    assert result["errors"] == {}
    expected = {f.stem for f in (root / "dags").glob("*.py")}
    assert len(result["dags"]) >= len(expected) > 0, result
    assert checks.dagbag_problem(result, expected) is None


@pytest.mark.parametrize("backend", ["kubernetes", "docker"])
def test_job_operator_with_every_default_flavor_parses_in_the_image(code_facts, backend):
    # examples/dags is mounted read-only at /examples by the probe
    result = parse_in_image(code_facts, checks.EXAMPLES, backend)
    assert result == {"dags": ["example_job_operator"], "errors": {}}
