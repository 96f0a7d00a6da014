"""The repository's pipelines as a whole: check all, render all into dags/, check dags/ is current."""

from __future__ import annotations

import difflib
import os
from pathlib import Path

from ml_platform.yamlsafe import YamlFileError, read_bounded

from ..errors import ConfigError, InputFileError
from ..errors import PipelineError, Problem, RenderCheckError
from .render import DEFAULT_TEMPLATE, GENERATED_MARK, duplicate_problems, output_name, render_one
from .validate import Checked, check

PIPELINES = "pipelines"
DAGS = "dags"


def flavor_names(root: Path) -> list[str]:
    return sorted(_catalog(root).flavors)


def flavor_pools(root: Path) -> dict[str, str]:
    """flavor -> the pool its jobs run in unless they name one (flavors.yaml `pool:`)."""
    return {n: f.pool for n, f in _catalog(root).flavors.items() if f.pool}


def _catalog(root: Path):
    from ml_platform.errors import CatalogFileError, PlatformConfigError
    from ml_platform.flavors import load_catalog

    try:
        return load_catalog(root / "flavors.yaml")
    except CatalogFileError as exc:
        raise InputFileError(str(exc).replace(f"{root}/", ""), "fix flavors.yaml first") from None
    except PlatformConfigError as exc:
        raise ConfigError(str(exc), "fix flavors.yaml first") from None


def pipeline_files(root: Path) -> list[Path]:
    return sorted([*(root / PIPELINES).glob("*.yaml"), *(root / PIPELINES).glob("*.yml")])


def check_all(root: Path) -> list[Checked]:
    files = pipeline_files(root)
    flavors = flavor_names(root) if files else []
    checked = [_check_file(root, p, flavors) for p in files]
    for prob in duplicate_problems(checked):
        c = next(c for c in checked if c.file == prob.file)
        c.problems.append(prob)
        c.pipeline = None
    if checked:
        from ..instance.check import settings_problems  # pools and connections every environment must have

        unchecked: list[Problem] = []
        for prob in settings_problems(root, checked, flavor_pools(root), unchecked):
            c = next((c for c in checked if c.file == prob.file), None)
            if c is None:  # an environment file's own problem: reported with the first pipeline's
                c = checked[0]
            c.problems.append(prob)
            c.pipeline = None
        for w in unchecked:
            next(c for c in checked if c.file == w.file).warnings.append(w)
    asset_warnings(checked)
    return checked


def _check_file(root: Path, path: Path, flavors: list[str]) -> Checked:
    rel = path.relative_to(root).as_posix()
    try:
        raw = read_bounded(path)  # never more than the bound in memory; a FIFO is refused, not read
    except YamlFileError as exc:
        return Checked(rel, "", problems=[Problem(rel, exc.line, "", exc.message.replace("files like it are",
                                                                                          "pipelines are"))])
    return check(rel, raw, flavors)


def asset_warnings(checked: list[Checked]) -> None:
    """A schedule waiting for an asset that no pipeline produces is a warning (another system may
    update it through Airflow's API), naming the producers known here."""
    producers: dict[str, list[str]] = {}
    for c in checked:
        for a in c.produces:
            producers.setdefault(a, [])
            if c.file not in producers[a]:
                producers[a].append(c.file)
    for c in checked:
        for asset, line in c.consumes:
            if asset in producers:
                continue
            close = difflib.get_close_matches(asset, list(producers), n=1)
            known = ", ".join(f"{a} ({', '.join(fs)})" for a, fs in sorted(producers.items())) or "none"
            c.warnings.append(Problem(c.file, line, "dag.schedule", f"asset '{asset}' is updated by no pipeline's "
                                      "outlets" + (f" (did you mean '{close[0]}'?)" if close else "")
                                      + f"; runs start only when something else updates it (produced here: {known})"))


def template_path(root: Path, template: str | None) -> Path:
    t = template or os.environ.get("PIPELINE_TEMPLATE") or DEFAULT_TEMPLATE
    p = Path(t) if os.path.isabs(t) else root / t
    if not p.is_file():
        raise ConfigError(f"DAG template {t} not found", f"restore {DEFAULT_TEMPLATE} or pass --template PATH")
    return p


def rendered(root: Path, template: str | None = None, warnings: list[Problem] | None = None) -> dict[str, str]:
    """dags/<name>.py -> text for every pipeline; raises PipelineError listing every problem.

    Warnings (they do not stop rendering) are appended to `warnings` when given."""
    checked = check_all(root)
    if warnings is not None:
        warnings.extend(w for c in checked for w in c.warnings)
    problems = [p for c in checked for p in c.problems]
    if problems:
        raise PipelineError(problems)
    if not checked:
        return {}
    tpl = template_path(root, template)
    pools = flavor_pools(root)
    return {f"{DAGS}/{output_name(c.pipeline)}": render_one(c, tpl, pools) for c in checked if c.pipeline}


def generated_files(root: Path) -> list[Path]:
    out = []
    for p in sorted((root / DAGS).glob("*.py")):
        with p.open(errors="replace") as f:
            if f.readline().startswith(GENERATED_MARK):
                out.append(p)
    return out


def render_all(root: Path, template: str | None = None,
               warnings: list[Problem] | None = None) -> tuple[list[str], list[str]]:
    """Write dags/; returns (written, removed). Only files with the generated mark are ever removed."""
    texts = rendered(root, template, warnings)
    (root / DAGS).mkdir(exist_ok=True)
    written = []
    for rel, text in texts.items():
        path = root / rel
        if not path.exists() or path.read_text() != text:
            tmp = path.with_suffix(".py.tmp")
            tmp.write_text(text)
            os.replace(tmp, path)
            written.append(rel)
    removed = []
    for p in generated_files(root):
        rel = p.relative_to(root).as_posix()
        if rel not in texts:
            p.unlink()
            removed.append(rel)
    return written, removed


def render_check(root: Path, template: str | None = None) -> None:
    texts = rendered(root, template)
    stale = []
    for rel, text in texts.items():
        path = root / rel
        if not path.exists():
            stale.append(f"{rel} is missing")
        elif path.read_text() != text:
            stale.append(f"{rel} is out of date with its pipeline")
    for p in generated_files(root):
        rel = p.relative_to(root).as_posix()
        if rel not in texts:
            stale.append(f"{rel} was generated from a pipeline that no longer exists")
    if stale:
        more = f" (+{len(stale) - 1} more: {'; '.join(stale[1:4])})" if len(stale) > 1 else ""
        raise RenderCheckError(stale[0] + more, "run make render and commit dags/")


__all__ = ["Problem", "check_all", "render_all", "render_check", "rendered"]
