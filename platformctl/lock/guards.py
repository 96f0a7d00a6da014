"""Guards that keep every dependency set on the configured Airflow version."""

from __future__ import annotations

from packaging.utils import canonicalize_name

from ..errors import LockInputError, ResolutionError
from .files import InLine, pin_lines, read_pins

# Packages whose version IS the Airflow version: only platform.yaml may choose it.
AIRFLOW_CORE = ("apache-airflow", "apache-airflow-core", "apache-airflow-task-sdk")
AIRFLOW_SET = "airflow"


def check_in_file(set_name: str, lines: list[InLine], display: str, airflow_version: str) -> None:
    """Static guard: before resolving, a set may not ask for another Airflow."""
    fix = f"Airflow is pinned by airflow_version in platform.yaml ({airflow_version}): change it there and run make lock"
    found_pin = False
    for ln in lines:
        req = ln.requirement
        if req is None:
            continue
        name = canonicalize_name(req.name)
        if name == "apache-airflow-task-sdk":
            continue  # its own version line (1.x) follows Airflow's; the resolver enforces consistency
        if name not in AIRFLOW_CORE:
            continue
        where = f"{display}:{ln.lineno}"
        if set_name != AIRFLOW_SET:
            raise LockInputError(
                f"'{ln.text}' changes {name}, which only requirements/airflow.in declares",
                f"remove this line; {fix}",
                where=where,
            )
        spec = str(req.specifier)
        if name == "apache-airflow":
            if spec != f"=={airflow_version}":
                raise LockInputError(
                    f"'{ln.text}' does not pin apache-airflow=={airflow_version}",
                    f"write apache-airflow=={airflow_version} here; to move Airflow, change airflow_version in "
                    "platform.yaml and this line together, then run make lock",
                    where=where,
                )
            found_pin = True
        elif spec and spec != f"=={airflow_version}":
            raise LockInputError(f"'{ln.text}' pins {name} away from {airflow_version}", f"remove the version; {fix}",
                                 where=where)
    if set_name == AIRFLOW_SET and not found_pin:
        raise LockInputError(
            f"apache-airflow=={airflow_version} is missing",
            f"add the line apache-airflow=={airflow_version}",
            where=display,
        )


def check_resolved(set_name: str, lock_text: str, display: str, airflow_version: str) -> None:
    """After resolving: the lock must hold exactly the configured Airflow."""
    pins = read_pins(lock_text)
    got = pins.get("apache-airflow") or pins.get("apache-airflow-core")
    if got and got != airflow_version:
        line = pin_lines(lock_text).get("apache-airflow", 0)
        raise ResolutionError(
            f"resolved apache-airflow=={got}, not the configured {airflow_version} (line {line})",
            "a requirement of this set needs another Airflow: relax it, or change airflow_version in platform.yaml",
            where=display,
        )
