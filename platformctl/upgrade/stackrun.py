"""Steps f and g: the smoke pipelines on a local stack of the current image, a copy of that stack's metadata
database migrated by the candidate's `airflow db migrate` (and checked with `airflow db check-migrations`),
then the same pipelines on a stack of the candidate image running on the migrated copy.

Each stack is a compose project of its own (upgrade-<pair>-current / -candidate, from the scratch tree), so the
user's `make up` stack is never touched; both are removed with their volumes at the end. A rehearsal to a
lower Airflow first takes the copy down to the candidate's schema head with the CURRENT image's
`airflow db downgrade` (only the newer Airflow knows how), then the candidate migrates and checks it.
"""

from __future__ import annotations

import contextlib
import re
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..config import PlatformConfig
from ..engine import ContainerEngine
from ..errors import PlatformError, StackError
from ..output import captured
from ..stack.compose import LOCAL_EXECUTOR, PortTaken, Shape, Stack, compose_env, free_port
from ..stack.images import build_support_images

HEAD_PROBE = ("from airflow.utils.db import _get_alembic_config\n"
              "from alembic.script import ScriptDirectory\n"
              "print('HEAD', ScriptDirectory.from_config(_get_alembic_config()).get_current_head())")
INIT = "airflow-init"  # the compose service that runs `airflow db migrate` before the others start
DB = "postgres"
# the small stack (one scheduler running the tasks, no broker, no Celery workers): the rehearsal compares the
# pipelines' states and durations on two Airflow versions, not the fleet's shape; it saves the machine's CPU
SMALL = Shape(LOCAL_EXECUTOR, 0, 1, "folder")
PSQL = ("-h", "/tmp", "-U", "airflow", "-d", "airflow")  # the stack's PostgreSQL: socket in /tmp, local trust


@dataclass
class JobState:
    task: str
    state: str | None
    seconds: float | None


@dataclass
class SmokeRun:
    pipeline: str
    state: str
    seconds: float
    jobs: list[JobState] = field(default_factory=list)
    error: str | None = None
    earlier: list[str] = field(default_factory=list)  # tries before this one that did not succeed ("failed in 360s")


@dataclass
class StackRuns:
    image: str
    project: str
    up_seconds: float = 0.0
    runs: list[SmokeRun] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.runs) and all(r.state == "success" for r in self.runs)


@dataclass
class Migration:
    ok: bool
    revision_before: str = ""
    revision_after: str = ""
    candidate_head: str = ""
    downgraded: bool = False
    seconds: float = 0.0
    dump_bytes: int = 0
    steps: list[str] = field(default_factory=list)  # "airflow db migrate (candidate): ok in 12.3s"
    error: str | None = None


def project_name(from_version: str, to_version: str, side: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", f"{from_version}-{to_version}".lower())
    return f"upgrade-{slug}-{side}"


def _run(stack: Stack, *args: str, input: str | None = None, timeout: int = 900) -> subprocess.CompletedProcess:
    """docker compose <args> in the stack's project, output captured (input: fed to stdin)."""
    return subprocess.run(stack._cmd(*args), cwd=stack.root, text=True, env=compose_env(), capture_output=True,
                          input=input, timeout=timeout, check=False)


@contextlib.contextmanager
def _quiet(log: Path):
    """compose's streamed output (Stack.up writes it to stdout) and say() lines into log, not the terminal."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a") as fh, contextlib.redirect_stdout(fh), captured() as lines:
        try:
            yield
        finally:
            fh.write("".join(f"{ln}\n" for ln in lines))


def down(stack: Stack) -> None:
    """Remove the stack with its volumes (its output to the stack log, not the terminal)."""
    p = _run(stack, "down", "--remove-orphans", "--volumes", timeout=300)
    with open(stack.root.parent / "stack.log", "a") as fh:
        fh.write(p.stdout + p.stderr)
    if p.returncode == 0:
        stack.env_file.unlink(missing_ok=True)


def _deploy_bundle(tree: Path, cfg: PlatformConfig) -> tuple[str, str]:
    """The local environment's bundle of the scratch tree (its store and the Airflow config the stack reads),
    through the deploy service `make up` uses."""
    from ..services.stack import deploy_local

    with _quiet(tree.parent / "stack.log"):
        d = deploy_local(tree, cfg)
    return d.store_path or "", str(d.env_file)


def start(tree: Path, cfg: PlatformConfig, engine: ContainerEngine, project: str, image: str, *,
          services: tuple[str, ...] = ()) -> Stack:
    """A stack of image from the scratch tree, started (only `services` when given, e.g. the database)."""
    store_dir, env_file = _deploy_bundle(tree, cfg)
    with _quiet(tree.parent / "stack.log"):
        build_support_images(tree, cfg, engine)
    stack = Stack(tree, project, cfg.stack.compose_file)
    for attempt in range(3):
        stack.write_state(platform_image=image, postgres_image=cfg.stack.postgres_image,
                          port=free_port() if attempt else None, bundle_store=store_dir, deploy_env_file=env_file,
                          shape=SMALL)
        try:
            if services:
                p = _run(stack, "up", "-d", "--wait", "--wait-timeout", "300", *services)
                if p.returncode != 0:
                    raise StackError(f"{', '.join(services)} of stack {project} did not start: "
                                     f"{(p.stderr or p.stdout).strip()[-500:]}")
            else:
                with _quiet(tree.parent / "stack.log"):
                    stack.up(wait_timeout=420)
            return stack
        except PortTaken:
            if attempt == 2:
                down(stack)
                raise
        except BaseException:
            down(stack)  # a stack that did not come up is not left behind
            raise
    return stack


def _one_run(api, stack: Stack, name: str, timeout: float) -> SmokeRun:
    from ..stack.follow import run_pipeline

    t0 = time.perf_counter()
    try:
        with _quiet(stack.root.parent / "stack.log"):
            r = run_pipeline(api, name, timeout=timeout, tail=3)
        jobs = [JobState(j.label, j.state, round(j.duration, 1) if j.duration is not None else None) for j in r.jobs]
        return SmokeRun(name, r.state, round(r.seconds, 1), jobs)
    except PlatformError as exc:
        return SmokeRun(name, "error", round(time.perf_counter() - t0, 1), error=exc.one_line())


def smoke(stack: Stack, pipelines: list[str], *, timeout: float = 600, retries: int = 1) -> list[SmokeRun]:
    """Each pipeline run to its end; one that does not succeed is run once more (retries), every try reported."""
    from ..stack.api import AirflowAPI
    from ..wait import wait_until

    api = AirflowAPI(stack.url)
    wait_until(api.healthy, timeout=300, poll=2)
    out = []
    for name in pipelines:
        run = _one_run(api, stack, name, timeout)
        for _ in range(retries):
            if run.state == "success":
                break
            # a busy machine can fail a task before it starts (the executor's workload times out): one more
            # try tells that from a pipeline that fails; the report shows every try
            again = _one_run(api, stack, name, timeout)
            again.earlier = [*run.earlier, f"{run.state} in {run.seconds:.0f}s" + (f" ({run.error})" if run.error else "")]
            run = again
        out.append(run)
    return out


def _revision(stack: Stack) -> str:
    p = _run(stack, "exec", "-T", DB, "psql", *PSQL, "-tAc",
             "select version_num from alembic_version")
    return p.stdout.strip() if p.returncode == 0 else ""


def run_current(tree: Path, cfg: PlatformConfig, engine: ContainerEngine, image: str, project: str,
                pipelines: list[str], dump: Path) -> tuple[StackRuns, str]:
    """The smoke pipelines on the current image; its database dumped to `dump` afterwards (the copy the
    candidate migrates). Returns the runs and the dumped schema revision. The stack is removed."""
    t0 = time.perf_counter()
    result = StackRuns(image, project)
    stack = start(tree, cfg, engine, project, image)
    try:
        result.up_seconds = round(time.perf_counter() - t0, 1)
        result.runs = smoke(stack, pipelines)
        revision = _revision(stack)
        p = _run(stack, "exec", "-T", DB, "pg_dump", *PSQL, "--no-owner", "--no-acl")
        if p.returncode != 0 or not p.stdout:
            raise StackError(f"pg_dump of stack {project} failed: {p.stderr.strip()[-400:]}")
        dump.write_text(p.stdout)
    finally:
        down(stack)
    return result, revision


def _step(m: Migration, what: str, stack: Stack, *args: str, timeout: int = 900) -> bool:
    t0 = time.perf_counter()
    p = _run(stack, "run", "--rm", "--no-deps", INIT, *args, timeout=timeout)
    took = time.perf_counter() - t0
    if p.returncode != 0:
        tail = [ln for ln in (p.stdout + p.stderr).strip().splitlines() if ln.strip()][-3:]
        m.steps.append(f"{what}: FAILED (exit {p.returncode}) in {took:.1f}s")
        m.error = f"{what} failed: {' | '.join(tail)[-600:]}"
        return False
    m.steps.append(f"{what}: ok in {took:.1f}s")
    return True


def candidate_head(engine: ContainerEngine, image: str) -> str:
    p = engine.run(image, ["python", "-c", HEAD_PROBE], timeout=300)
    m = re.search(r"^HEAD (\S+)", p.stdout, re.MULTILINE)
    if not m:
        raise StackError(f"cannot read the schema head of {image}: {(p.stdout + p.stderr).strip()[-300:]}")
    return m.group(1)


def migrate_copy(tree: Path, cfg: PlatformConfig, engine: ContainerEngine, *, current_image: str,
                 candidate_image: str, project: str, dump: Path, revision_before: str, lower: bool) -> tuple[Migration, Stack | None]:
    """Restore the dump into the candidate project's fresh database, migrate it with the candidate image and
    check it. Returns the migration and the stack (its database running) for the candidate's smoke runs."""
    t0 = time.perf_counter()
    m = Migration(False, revision_before=revision_before, dump_bytes=dump.stat().st_size)
    m.candidate_head = candidate_head(engine, candidate_image)
    stack = start(tree, cfg, engine, project, candidate_image, services=(DB,))
    try:
        return _migrate(m, stack, cfg, dump, current_image, candidate_image, lower)
    except BaseException:
        down(stack)
        raise
    finally:
        m.seconds = round(time.perf_counter() - t0, 1)


def _migrate(m: Migration, stack: Stack, cfg: PlatformConfig, dump: Path, current_image: str, candidate_image: str,
             lower: bool) -> tuple[Migration, Stack]:
    p = _run(stack, "exec", "-T", DB, "psql", "-q", *PSQL, "-v", "ON_ERROR_STOP=1",
             input=dump.read_text())
    if p.returncode != 0:
        m.error = f"restoring the database copy failed: {p.stderr.strip()[-400:]}"
        return m, stack
    m.steps.append(f"copy of the current stack's database restored ({m.dump_bytes} bytes of SQL)")
    if lower and m.revision_before and m.revision_before != m.candidate_head:
        # only the newer Airflow has the downgrade steps: the current image takes the copy down
        m.downgraded = True
        stack.write_state(platform_image=current_image, postgres_image=cfg.stack.postgres_image, port=None,
                          bundle_store=stack.state()["BUNDLE_STORE"], deploy_env_file=stack.state()["DEPLOY_ENV_FILE"],
                          shape=stack.shape())
        ok = _step(m, f"airflow db downgrade --to-revision {m.candidate_head} (current image)", stack,
                   "db", "downgrade", "--to-revision", m.candidate_head, "-y")
        stack.write_state(platform_image=candidate_image, postgres_image=cfg.stack.postgres_image, port=None,
                          bundle_store=stack.state()["BUNDLE_STORE"], deploy_env_file=stack.state()["DEPLOY_ENV_FILE"],
                          shape=stack.shape())
        if not ok:
            return m, stack
    if not _step(m, "airflow db migrate (candidate image)", stack, "db", "migrate"):
        return m, stack
    if not _step(m, "airflow db check-migrations (candidate image)", stack, "db", "check-migrations", "-t", "60"):
        return m, stack
    m.revision_after = _revision(stack)
    if m.revision_after != m.candidate_head:
        m.error = f"the migrated copy is at revision {m.revision_after}, the candidate's head is {m.candidate_head}"
        return m, stack
    m.ok = True
    return m, stack


def run_candidate(stack: Stack, image: str, pipelines: list[str]) -> StackRuns:
    """The whole candidate stack on the migrated copy, the smoke pipelines on it; the stack is removed."""
    t0 = time.perf_counter()
    result = StackRuns(image, stack.project)
    try:
        with _quiet(stack.root.parent / "stack.log"):
            stack.up(wait_timeout=420)
        result.up_seconds = round(time.perf_counter() - t0, 1)
        result.runs = smoke(stack, pipelines)
    finally:
        down(stack)
    return result
