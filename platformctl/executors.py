"""The Airflow executor an environment runs, and what the image must carry for it (no Airflow import).

An environment names its executor (`executor:` in environments/<env>.yaml): one of Airflow's core executor
names, or a comma-separated list of them (Airflow 3's multiple executors, e.g. the
`CeleryExecutor,KubernetesExecutor` hybrid; the first is the default). Celery and Kubernetes live in
providers: an executor whose provider (and client) is not in the image's locks would crash the scheduler
and every worker on the first deploy, so `make lock-check`, `make build`, `make push` and `make deploy`
refuse it first, with one line naming the package to add. The image checks then import each configured
executor's class in the built image through Airflow's own ExecutorLoader.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path

from .errors import ExecutorError

# Airflow 3's core executor names (airflow/executors/executor_constants.py) and the distributions each
# needs in the image besides apache-airflow: the provider that holds the class and the client it connects
# with (ExecutorLoader.executors maps the names to those classes).
EXECUTOR_PACKAGES: dict[str, tuple[str, ...]] = {
    "LocalExecutor": (),
    "CeleryExecutor": ("apache-airflow-providers-celery", "celery", "redis"),
    "KubernetesExecutor": ("apache-airflow-providers-cncf-kubernetes", "kubernetes"),
}
EXECUTOR_CLASSES = {
    "LocalExecutor": "airflow.executors.local_executor.LocalExecutor",
    "CeleryExecutor": "airflow.providers.celery.executors.celery_executor.CeleryExecutor",
    "KubernetesExecutor": "airflow.providers.cncf.kubernetes.executors.kubernetes_executor.KubernetesExecutor",
}
DEFAULT_EXECUTOR = "CeleryExecutor"  # the official chart's default (chart 1.22): what an unset value runs
EXECUTOR_PATTERN = r"^(LocalExecutor|CeleryExecutor|KubernetesExecutor)(,(LocalExecutor|CeleryExecutor|KubernetesExecutor))*$"


def executor_names(value: str) -> list[str]:
    return [n.strip() for n in value.split(",") if n.strip()]


def executor_problem(value: str) -> str | None:
    """Why `value` is not an executor setting Airflow 3 accepts from us, or None."""
    names = executor_names(value)
    if not names:
        return "executor is empty: name one of " + ", ".join(EXECUTOR_PACKAGES)
    for n in names:
        if n not in EXECUTOR_PACKAGES:
            close = difflib.get_close_matches(n, list(EXECUTOR_PACKAGES), n=1)
            return (f"executor '{n}' is not an Airflow executor" + (f" (did you mean '{close[0]}'?" if close else " (")
                    + f" known: {', '.join(EXECUTOR_PACKAGES)}; several: comma-separated, e.g. "
                      "CeleryExecutor,KubernetesExecutor)")
    if len(set(names)) != len(names):
        return f"executor '{value}' names an executor twice (Airflow refuses duplicates)"
    return None


def required_packages(value: str) -> dict[str, str]:
    """{distribution: executor that needs it} for an executor setting."""
    out: dict[str, str] = {}
    for n in executor_names(value):
        for pkg in EXECUTOR_PACKAGES.get(n, ()):
            out.setdefault(pkg, n)
    return out


@dataclass(frozen=True)
class ExecutorUse:
    """One environment's executor setting and where it was read from (file:line, for the message)."""

    environment: str
    executor: str
    where: str


def missing_packages(executor: str, pins: dict[str, str]) -> list[tuple[str, str]]:
    """[(distribution, executor)] the executor needs and the pins (canonical names) lack."""
    return [(pkg, ex) for pkg, ex in required_packages(executor).items() if pkg not in pins]


def check_against_locks(uses: list[ExecutorUse], pins: dict[str, str], lock_files: str) -> None:
    """ExecutorError for the first environment whose executor needs a package the image's locks lack."""
    for use in uses:
        missing = missing_packages(use.executor, pins)
        if missing:
            pkg, ex = missing[0]
            raise ExecutorError(
                f"executor {ex} (environment {use.environment}) needs {pkg}, which is not in {lock_files}: the image "
                f"could not load it", f"add {pkg} to requirements/airflow.in and run make lock, or choose another "
                                      "executor", where=use.where)


def image_pins(root: Path, python: str) -> tuple[dict[str, str] | None, str]:
    """The pins of the image's dependency sets (airflow + team) for python, and their files for a message;
    None when there is no lock at all (make lock-check and make build report that themselves)."""
    from .lock.core import REQ_DIR, lock_filename
    from .lock.files import read_pins

    pins: dict[str, str] = {}
    files = []
    for s in ("airflow", "team"):
        rel = f"{REQ_DIR}/{lock_filename(s, python)}"
        files.append(rel)
        path = root / rel
        if path.exists():
            pins.update(read_pins(path.read_text()))
    return (pins if pins else None), " and ".join(files)


def executor_uses(root: Path, names: list[str] | None = None) -> list[ExecutorUse]:
    """Every environment's executor (or those named), with the file:line it comes from."""
    from .environments import ENV_DIR, known_environments, load_environment
    from .yamlfile import line_of

    out = []
    for name in names or known_environments(root):
        env = load_environment(root, name)
        rel = f"{ENV_DIR}/{name}.yaml"
        path = root / rel
        where = rel + " (built in)"
        if path.exists():
            line = line_of(path.read_text(), ("executor",))
            where = f"{rel}:{line}" if line else rel
        out.append(ExecutorUse(name, env.executor, where))
    return out


def configured_executors(root: Path) -> list[str]:
    """The distinct executor settings of every environment (what the image checks load)."""
    seen: list[str] = []
    for use in executor_uses(root):
        if use.executor not in seen:
            seen.append(use.executor)
    return seen


def check_project(root: Path, python: str, names: list[str] | None = None) -> None:
    """The lock-time check: every (or the named) environment's executor can load from the image's locks."""
    pins, files = image_pins(root, python)
    if pins is None:
        return
    check_against_locks(executor_uses(root, names), pins, files)
