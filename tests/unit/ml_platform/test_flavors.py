from __future__ import annotations

import json
from pathlib import Path

import pytest

from ml_platform.errors import FlavorError, PlatformConfigError
from ml_platform.flavors import catalog_json_schema, load_catalog
from ml_platform.quantities import cpu_millicores, memory_bytes

ROOT = Path(__file__).resolve().parents[3]
GOOD = """flavors:
  small:
    description: s
    cpu: {request: 500m, limit: "1"}
    memory: {request: 512Mi, limit: 1Gi}
"""


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "flavors.yaml"
    p.write_text(text)
    return p


def test_default_catalog_has_the_promised_shapes():
    c = load_catalog(ROOT / "flavors.yaml")
    assert {"cpu-small", "cpu-large", "mem-large", "gpu-a100"} <= set(c.names())
    assert c.flavors["gpu-a100"].gpu.resource == "nvidia.com/gpu"
    assert memory_bytes(c.flavors["mem-large"].memory.limit) >= 16 * 2**30


@pytest.mark.parametrize("q,expected", [("500m", 500), ("1", 1000), ("0.5", 500), ("2", 2000)])
def test_cpu_quantities(q, expected):
    assert cpu_millicores(q) == expected


@pytest.mark.parametrize("q,expected", [("512Mi", 512 * 2**20), ("1Gi", 2**30), ("2G", 2 * 10**9), ("100", 100)])
def test_memory_quantities(q, expected):
    assert memory_bytes(q) == expected


@pytest.mark.parametrize("edit,line,field,words", [
    (("limit: \"1\"", "limit: 250m"), 4, "flavors.small.cpu", "below the request '500m'"),
    (("limit: 1Gi", "limit: 1Gb"), 5, "flavors.small.memory.limit", "not a memory quantity"),
    (("memory: {request: 512Mi, limit: 1Gi}", "memory: {request: 512Mi, limit: 1Gi}\n    gpu: {count: 1}"),
     6, "flavors.small.gpu", "needs gpu.resource"),
    (("memory: {request: 512Mi, limit: 1Gi}",
      "memory: {request: 512Mi, limit: 1Gi}\n    gpu: {count: 0.5, resource: nvidia.com/gpu}"),
     6, "flavors.small.gpu.count", "whole number"),
    (("description: s", "description: s\n    cpuu: 1"), 4, "flavors.small.cpuu", "Extra inputs"),
])
def test_invalid_entries_name_file_line_and_field(tmp_path, edit, line, field, words):
    p = write(tmp_path, GOOD.replace(*edit))
    with pytest.raises(PlatformConfigError) as exc:
        load_catalog(p)
    msg = str(exc.value)
    assert msg.startswith(f"flavors.yaml:{line}: {field} "), msg
    assert words in msg and "\n" not in msg


def test_unknown_and_forbidden_flavors():
    c = load_catalog(ROOT / "flavors.yaml")
    with pytest.raises(FlavorError, match="did you mean 'gpu-a100'"):
        c.get("gpu-a10")
    with pytest.raises(FlavorError) as exc:
        c.get("gpu-a100", allowed={"cpu-small", "cpu-large"})
    assert "not allowed in this environment (allowed: cpu-large, cpu-small)" in str(exc.value)


def test_schema_is_committed_and_current():
    assert (ROOT / "schemas/flavors.schema.json").read_text() == catalog_json_schema()
    assert "flavors" in json.loads(catalog_json_schema())["properties"]
