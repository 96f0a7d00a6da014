"""Every DAG baked into the image imports with zero errors, with no connections or variables set."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.integration

PARSE = """
import json, sys
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(sys.argv[1], safe_mode=False)
print("RESULT " + json.dumps({"dags": sorted(bag.dag_ids), "errors": {k: str(v)[-2000:] for k, v in bag.import_errors.items()}}))
"""


def parse_in_image(run_in, folder: str, backend: str, volumes=()) -> dict:
    p = run_in("python", "-c", PARSE, folder, volumes=volumes,
               env={"ML_PLATFORM_BACKEND": backend, "AIRFLOW__CORE__UNIT_TEST_MODE": "True"})
    line = next(ln for ln in p.stdout.splitlines() if ln.startswith("RESULT "))
    return json.loads(line[len("RESULT "):])


@pytest.mark.parametrize("backend", ["kubernetes", "docker"])
def test_every_baked_dag_imports_without_errors(run_in, root, backend):
    result = parse_in_image(run_in, "/opt/airflow/dags", backend)
    assert result["errors"] == {}
    expected = {f.stem for f in (root / "dags").glob("*.py")}
    assert len(result["dags"]) >= len(expected) > 0, result


@pytest.mark.parametrize("backend", ["kubernetes", "docker"])
def test_job_operator_with_every_default_flavor_parses_in_the_image(run_in, root, backend):
    result = parse_in_image(run_in, "/examples", backend, volumes=[f"{root / 'examples/dags'}:/examples:ro"])
    assert result == {"dags": ["example_job_operator"], "errors": {}}
