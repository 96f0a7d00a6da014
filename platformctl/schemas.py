"""JSON Schemas for the user-edited files, written to schemas/ for editors (yaml-language-server)."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel

from .config import PlatformConfig
from .environments import Environment

SCHEMAS: dict[str, type[BaseModel]] = {"platform.schema.json": PlatformConfig, "environment.schema.json": Environment}


def schema_text(model: type[BaseModel]) -> str:
    return json.dumps(model.model_json_schema(), indent=2, sort_keys=True) + "\n"


def write_schemas(root: Path) -> list[Path]:
    out = []
    (root / "schemas").mkdir(exist_ok=True)
    for name, model in SCHEMAS.items():
        path = root / "schemas" / name
        path.write_text(schema_text(model))
        out.append(path)
    return out
