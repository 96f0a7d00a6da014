"""The JSON Schemas describe the files users write: every shipped YAML and every docs example passes
check-jsonschema, and each bad example the schema can express is rejected by the schema and by the
validator, naming the same field."""

from __future__ import annotations

import datetime
import json
import re
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

from platformctl.pipelines.project import flavor_names
from platformctl.pipelines.validate import check
from tests.unit.pipelines.samples import V1, V2, breakages

ROOT = Path(__file__).resolve().parents[2]
MODELINE = re.compile(r"^# yaml-language-server: \$schema=(\S+)$", re.M)
NOT_OURS = {"stack/compose.yaml",  # a docker compose file: compose's own schema
            "stack/compose.local-executor.yaml", "stack/compose.folder-store.yaml", "stack/compose.s3.yaml",
            # CI examples: SchemaStore's schemas, in tests/unit/test_ci_files.py
            "examples/ci/github/platform.yml", "examples/ci/gitlab/.gitlab-ci.yml"}


def shipped_yaml() -> list[str]:
    out = subprocess.run(["git", "ls-files", "*.yaml", "*.yml"], cwd=ROOT, capture_output=True, text=True,
                         check=True).stdout.split()
    return [f for f in out if not f.startswith("tests/") and f not in NOT_OURS]


def schema_of(rel: str) -> Path:
    m = MODELINE.search((ROOT / rel).read_text())
    assert m, f"{rel} has no '# yaml-language-server: $schema=' line: editors get no help for it"
    return ((ROOT / rel).parent / m.group(1)).resolve()


def check_jsonschema(schema: Path, files: list[Path]) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).parent / "check-jsonschema"
    return subprocess.run([str(exe), "--schemafile", str(schema), *map(str, files)], capture_output=True, text=True)


def test_every_shipped_yaml_passes_check_jsonschema():
    by_schema: dict[Path, list[Path]] = {}
    files = shipped_yaml()
    assert {"platform.yaml", "flavors.yaml", "environments/dev.yaml", "pipelines/churn_retrain.yaml"} <= set(files)
    for rel in files:
        by_schema.setdefault(schema_of(rel), []).append(ROOT / rel)
    for schema, group in by_schema.items():
        p = check_jsonschema(schema, group)
        assert p.returncode == 0, f"{schema.name}:\n{p.stdout}{p.stderr}"


def docs_examples() -> list[tuple[str, str]]:
    """(where, text) of every ```yaml block in docs/*.md; each is a whole pipeline file."""
    out = []
    for md in sorted((ROOT / "docs").glob("*.md")):
        text = md.read_text()
        for m in re.finditer(r"^```yaml\n(.*?)^```", text, re.M | re.S):
            line = text[:m.start()].count("\n") + 1
            out.append((f"{md.relative_to(ROOT)}:{line}", m.group(1)))
    return out


def test_docs_examples_pass_the_schema_and_the_validator(tmp_path):
    examples = docs_examples()
    assert len(examples) >= 3, "docs/pipelines.md shows v1 and v2 examples"
    files = []
    for i, (where, text) in enumerate(examples):
        assert re.search(r"^dag:", text, re.M), f"{where}: a docs example must be a whole pipeline (dag: and jobs:)"
        f = tmp_path / f"example{i}.yaml"
        f.write_text(text)
        files.append(f)
        problems = check(where, text.encode(), flavor_names(ROOT)).problems
        assert not problems, "\n".join(map(str, problems))
    p = check_jsonschema(ROOT / "schemas/pipeline.schema.json", files)
    assert p.returncode == 0, p.stdout + p.stderr


def _plain(o):
    if isinstance(o, dict):
        return {k: _plain(v) for k, v in o.items()}
    if isinstance(o, list):
        return [_plain(v) for v in o]
    return o.isoformat() if isinstance(o, (datetime.date, datetime.datetime)) else o


def schema_fields(text: str) -> set[str]:
    schema = json.loads((ROOT / "schemas/pipeline.schema.json").read_text())
    out = set()
    def walk(errors):
        for e in errors:
            yield e
            yield from walk(e.context or [])

    for err in jsonschema.Draft202012Validator(schema).iter_errors(_plain(yaml.safe_load(text))):
        for e in walk([err]):
            path = ".".join(str(p) for p in e.absolute_path)
            if e.validator == "additionalProperties":
                out |= {f"{path}.{k}".lstrip(".") for k in re.findall(r"'([^']+)' was unexpected", e.message)
                        or re.findall(r"\('([^']+)'", e.message)}
            out.add(path)
    return out


def test_good_examples_pass_both():
    for text in (V1, V2):
        assert schema_fields(text) == set()
        assert check("p.yaml", text.encode(), flavor_names(ROOT)).problems == []


@pytest.mark.parametrize("case", breakages("V1", "V2", schema=True))
def test_bad_example_is_rejected_by_schema_and_validator_naming_the_field(case):
    text = case.text()
    assert case.schema in schema_fields(text), schema_fields(text)
    problems = check("p.yaml", text.encode(), flavor_names(ROOT)).problems
    assert case.schema in {p.field for p in problems}, [str(p) for p in problems]


def test_committed_schemas_are_generated_from_the_models():
    from platformctl.schemas import all_schemas

    for name, text in all_schemas().items():
        assert (ROOT / "schemas" / name).read_text() == text, f"run make schema ({name})"
    env = json.loads(all_schemas()["environment.schema.json"])
    assert "name" not in env.get("required", []) and "bundle" in env["required"]
