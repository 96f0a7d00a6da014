"""JSON Schemas for the user-edited files, written to schemas/ for editors (yaml-language-server).

Each schema describes the *input* (what users write: durations like '30m', no `name` in an
environment file), generated from the models that validate it; tests/unit/test_schemas.py checks
every shipped YAML and every docs example against it.
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel

from .config import PlatformConfig
from .environments import EnvironmentFile

SCHEMAS: dict[str, type[BaseModel]] = {"platform.schema.json": PlatformConfig, "environment.schema.json": EnvironmentFile}


def schema_text(model: type[BaseModel]) -> str:
    return json.dumps(model.model_json_schema(), indent=2, sort_keys=True) + "\n"


def all_schemas() -> dict[str, str]:
    from ml_platform.flavors import catalog_json_schema

    from .pipelines.model import pipeline_json_schema

    out = {name: schema_text(model) for name, model in SCHEMAS.items()}
    out["flavors.schema.json"] = catalog_json_schema()
    out["pipeline.schema.json"] = pipeline_json_schema()
    return out


def write_schemas(root: Path) -> list[Path]:
    out = []
    (root / "schemas").mkdir(exist_ok=True)
    for name, text in all_schemas().items():
        path = root / "schemas" / name
        path.write_text(text)
        out.append(path)
    return out
