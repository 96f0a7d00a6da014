"""What the platform page shows of the running DAG bundle, read from the bundle's own files: each
pipeline's YAML (`pipelines/*.yaml`, shipped in every bundle version next to the DAGs rendered from it)
and the version's manifest (bundle_format.MANIFEST: version, commit, when, which files). Nothing is
imported or executed: a page view runs no DAG code.

Where: each DAG bundle Airflow is configured with (its local folder on this machine: the platform
bundle's live version, or the image's dags folder, whose sibling `pipelines/` the image ships), or the
folders in ML_PLATFORM_PIPELINE_DIRS (os.pathsep-separated).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .. import yamlsafe
from ..bundle_format import MANIFEST  # the name PlatformDagBundle writes into each fetched version


@dataclass(frozen=True)
class Job:
    name: str
    image: str | None
    flavor: str | None
    group: str | None = None
    mapped: bool = False


@dataclass(frozen=True)
class Pipeline:
    dag_id: str
    source: str                      # the YAML file, relative to the bundle root
    folder: str                      # the bundle root it was read from
    jobs: list[Job] = field(default_factory=list)
    edges: list[list[str]] = field(default_factory=list)
    bundle_version: str | None = None  # from the manifest; None outside a deployed bundle
    commit: str | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def bundle_roots() -> list[Path]:
    env = os.environ.get("ML_PLATFORM_PIPELINE_DIRS")
    if env:
        return [Path(p) for p in env.split(os.pathsep) if p]
    bundles = configured_bundles()
    if bundles is None:
        from airflow.configuration import conf

        return [Path(conf.get("core", "dags_folder"))]
    roots: list[Path] = []
    for bundle in bundles:
        try:
            roots.append(Path(bundle.path))
        except Exception:  # noqa: BLE001 - a bundle not fetched on this machine yet: nothing to show from it
            continue
    return roots


def configured_bundles() -> list | None:
    """The DAG bundles this instance is configured with (the environment's platform bundle among them);
    None when no bundle configuration can be read here."""
    try:
        from airflow.dag_processing.bundles.manager import DagBundlesManager

        return list(DagBundlesManager().get_all_dag_bundles())
    except Exception:  # noqa: BLE001 - reported by the callers' fallbacks
        return None


def read_manifest(root: Path) -> dict | None:
    try:
        manifest = json.loads((root / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) and isinstance(manifest.get("files"), dict) else None


def pipeline_files(root: Path) -> tuple[Path, list[str], dict | None] | None:
    """(root, the pipeline YAMLs relative to it, the manifest) of one bundle folder. A deployed version
    lists its files in its manifest; a folder without one (the image's dags folder, a checkout) is a
    bundle root with pipelines/, or a dags folder whose sibling pipelines/ holds them."""
    manifest = read_manifest(root)
    if manifest is not None:
        rels = sorted(r for r in manifest["files"] if r.startswith("pipelines/") and r.endswith((".yaml", ".yml")))
        return root, rels, manifest
    for base in (root, root.parent):
        folder = base / "pipelines"
        if folder.is_dir():
            return base, sorted(f"pipelines/{p.name}" for p in folder.iterdir() if p.suffix in (".yaml", ".yml")), None
    return None


def _mapping(value) -> dict:
    return value if isinstance(value, dict) else {}


def read_pipeline(root: Path, rel: str, manifest: dict | None = None) -> Pipeline | None:
    """The graph of one pipeline YAML: dag id, jobs (image and flavor after defaults) and edges (depends_on,
    and a job mapped over another job's output runs after it). None for a file that is not a pipeline
    (deploy validated every file; anything else is skipped, not guessed at)."""
    try:
        data, _ = yamlsafe.load_file(root / rel)
    except (OSError, yamlsafe.YamlFileError):
        return None
    data = _mapping(data)
    name = _mapping(data.get("dag")).get("name")
    jobs = _mapping(data.get("jobs"))
    if not isinstance(name, str) or not jobs:
        return None
    defaults = _mapping(data.get("defaults"))
    out = Pipeline(dag_id=name, source=rel, folder=str(root),
                   bundle_version=(manifest or {}).get("version"), commit=(manifest or {}).get("commit"))
    for job, spec in jobs.items():
        spec = _mapping(spec)
        mapped = _mapping(spec.get("map"))
        out.jobs.append(Job(str(job), spec.get("docker_image", defaults.get("docker_image")),
                            spec.get("resource_flavor", defaults.get("resource_flavor")),
                            spec.get("group"), bool(mapped)))
        ups = [u for u in spec.get("depends_on") or [] if isinstance(u, str)]
        source = _mapping(mapped.get("over")).get("output")
        if isinstance(source, str) and source not in ups:
            ups.append(source)
        out.edges.extend([up, str(job)] for up in ups)
    return out


def running_pipelines() -> list[Pipeline]:
    """Every pipeline of the running bundles, by dag id (the first bundle naming one wins)."""
    found: dict[str, Pipeline] = {}
    for root in bundle_roots():
        listing = pipeline_files(root)
        if listing is None:
            continue
        base, rels, manifest = listing
        for rel in rels:
            p = read_pipeline(base, rel, manifest)
            if p is not None and p.dag_id not in found:
                found[p.dag_id] = p
    return [found[k] for k in sorted(found)]
