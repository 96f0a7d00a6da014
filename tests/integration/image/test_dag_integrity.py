"""Every DAG baked into the image imports with zero errors, with no connections or variables set."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.integration

PARSE = """
import json, os
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(os.environ["AIRFLOW_HOME"] + "/dags", safe_mode=False)
print("RESULT " + json.dumps({"dags": sorted(bag.dag_ids), "errors": {k: str(v)[-2000:] for k, v in bag.import_errors.items()}}))
"""


@pytest.mark.parametrize("backend", ["kubernetes", "docker"])
def test_every_dag_imports_without_errors(run_in, root, backend):
    p = run_in("python", "-c", PARSE, env={"ML_PLATFORM_BACKEND": backend, "AIRFLOW__CORE__UNIT_TEST_MODE": "True"})
    line = next(ln for ln in p.stdout.splitlines() if ln.startswith("RESULT "))
    result = json.loads(line[len("RESULT "):])
    assert result["errors"] == {}
    expected = {f.stem for f in (root / "dags").glob("*.py")}
    assert len(result["dags"]) >= len(expected) > 0, result
