"""The image checks `make build` runs on the image it built (and the image tests call): product code, so an
installed copy of the build tool needs no tests/ folder.

Three groups, each a function of facts gathered in the image by one probe run (inimage.py, one container
start per group, Airflow imported once):

  deps  what the dependency layers hold: every pin installed at its pin, `uv pip check`, bytecode present
        and fresh for every module of the venv, no installer caches or compilers left. Run as root.
        Recorded in the build record against the digests of the layers it inspects (every layer below
        the final stage, see dependency_layers) and the pins and checks it ran with: `make build` does not
        run it again while that key is unchanged. A plugin or DAG edit changes only final-stage layers.
  code  what the code layers do: the configured Airflow, uid 50000 / gid 0, the operators package imports,
        the plugin loads with all its parts and shows the image's build record, every baked DAG (and the
        example job DAG) imports with zero errors under both backends, the image's labels. Every build.
  api   the image's API server starts and answers /api/v2/monitor/health and the plugin's view. Every
        build, in parallel with the other two.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import socket
import subprocess
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from ...engine import Container, ContainerEngine
from ...errors import EngineError
from ...lock.core import REQ_DIR, lock_filename
from ...lock.files import read_pins
from ...lock.resolvers import find_uv

PROBE = Path(__file__).with_name("inimage.py")
MARK = "PLATFORM-CHECKS "
GROUPS = ("deps", "code", "api")
PINNED_SETS = ("airflow", "team")
BACKENDS = ("kubernetes", "docker")
BAKED_DAGS = "/opt/airflow/dags"
EXAMPLES = "/examples"  # examples/dags of the project, mounted read-only
LAYER_STEPS = ("RUN", "COPY", "ADD", "WORKDIR")  # the Dockerfile instructions BuildKit commits a layer for


@dataclass
class Result:
    group: str
    name: str
    ok: bool
    detail: str = ""


@dataclass
class GroupRun:
    group: str
    results: list[Result] = field(default_factory=list)
    seconds: float = 0.0
    skipped: str | None = None  # why it did not run (a record of a pass on the same key)

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results)


# ---------------------------------------------------------------- what the dependency checks inspect
def final_stage_layers(dockerfile: Path) -> int | None:
    """How many layers the Dockerfile's last stage adds on top of its parent (the code: entrypoint, flavors,
    plugins, DAGs), or None if the file cannot be read. Continuation lines are joined first."""
    try:
        text = dockerfile.read_text()
    except OSError:
        return None
    lines = re.sub(r"\\\n", " ", text).splitlines()
    count = None
    for line in lines:
        word = line.strip().split(" ", 1)[0].upper()
        if word == "FROM":
            count = 0
        elif count is not None and word in LAYER_STEPS:
            count += 1
    return count


def dependency_layers(layers: list[str], dockerfile: Path) -> list[str]:
    """The layers the dependency checks inspect: every layer below the final stage. When the Dockerfile does
    not say (missing, or more final-stage steps than layers), every layer: the checks then re-run on any
    change, never less often than they should."""
    n = final_stage_layers(dockerfile)
    if not n or n >= len(layers):
        return list(layers)
    return list(layers[:-n])


def expected_pins(root: Path, python: str) -> dict[str, str]:
    pins: dict[str, str] = {}
    for s in PINNED_SETS:
        pins.update(read_pins((root / REQ_DIR / lock_filename(s, python)).read_text()))
    return pins


def checks_fingerprint() -> str:
    """The checks themselves: a change to the probe or to these rules re-runs every group."""
    h = hashlib.sha256()
    for p in sorted(Path(__file__).parent.glob("*.py")):
        h.update(p.name.encode() + b"\0" + p.read_bytes())
    return "sha256:" + h.hexdigest()


def dependency_key(dep_layers: list[str], pins: dict[str, str], uv_version: str) -> str:
    """What a dependency-check pass is valid for: content, never time."""
    blob = json.dumps({"layers": dep_layers, "pins": sorted(pins.items()), "uv": uv_version,
                       "checks": checks_fingerprint()}, sort_keys=True)
    return "sha256:" + hashlib.sha256(blob.encode()).hexdigest()


# ---------------------------------------------------------------- probes (one container start each)
def probe(engine: ContainerEngine, image: str, spec: dict, *, user: str | None = None, volumes: list[str] = (),
          env: dict[str, str] | None = None, timeout: int = 600) -> dict:
    """Run inimage.py in the image with spec; its facts, or {"errors": {"probe": why}} if it did not answer."""
    try:
        p = engine.run(image, ["python", "/platform-checks.py", json.dumps(spec)], network="none", user=user,
                       volumes=[f"{PROBE}:/platform-checks.py:ro", *volumes], env=env, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"errors": {"probe": f"no answer within {timeout} s"}}
    line = next((ln for ln in reversed(p.stdout.splitlines()) if ln.startswith(MARK)), None)
    if line is None:
        return {"errors": {"probe": f"exited {p.returncode}: {(p.stdout + p.stderr)[-2000:]}"}}
    return json.loads(line[len(MARK):])


def probe_deps(engine: ContainerEngine, image: str, uv: str | None = None) -> dict:
    return probe(engine, image, {"groups": ["deps"], "uv": "/uv"}, user="0", volumes=[f"{uv or find_uv()}:/uv:ro"])


def dag_folders(examples: Path | None) -> list[tuple[str, str]]:
    folders = [(BAKED_DAGS, b) for b in BACKENDS]
    if examples is not None:
        folders += [(EXAMPLES, b) for b in BACKENDS]
    return folders


def probe_code(engine: ContainerEngine, image: str, examples: Path | None = None, executors: list[str] = ()) -> dict:
    """examples: the project's examples/dags (the job operator with every default flavor), parsed as well;
    executors: the environments' executor settings, each loaded through Airflow's ExecutorLoader."""
    volumes = [f"{examples}:{EXAMPLES}:ro"] if examples is not None else []
    from ...deploy.managed import BUNDLE_CLASS

    return probe(engine, image, {"groups": ["code"], "dag_folders": dag_folders(examples),
                                 "executors": list(executors), "bundle_class": BUNDLE_CLASS},
                 volumes=volumes, env={"AIRFLOW__CORE__UNIT_TEST_MODE": "True"})


# ---------------------------------------------------------------- rules (facts -> results)
def normalise(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def installed_versions(distributions: dict[str, str]) -> dict[str, str]:
    return {normalise(k): v for k, v in distributions.items()}


def wrong_pins(distributions: dict[str, str], pins: dict[str, str]) -> dict[str, tuple[str, str | None]]:
    """Pins not installed at their pin: {name: (pinned, installed or None)}."""
    installed = installed_versions(distributions)
    return {n: (v, installed.get(n)) for n, v in pins.items() if installed.get(n) != v}


def bytecode_problem(bc: dict) -> str | None:
    if bc["fresh"] <= 5000:  # the Airflow lock alone has ~8,700 modules
        return f"only {bc['fresh']} modules with fresh bytecode in {bc['site']}"
    if bc["missing"] or bc["stale"]:
        return (f"{len(bc['missing'])} modules without bytecode, e.g. {bc['missing'][:5]}; "
                f"{len(bc['stale'])} with stale bytecode, e.g. {bc['stale'][:5]}")
    return None


def plugin_info(plugins_cli_output: str) -> dict[str, dict]:
    """`airflow plugins --output json`'s plugins by name."""
    start = plugins_cli_output.index("[")
    return {p["name"]: p for p in json.loads(plugins_cli_output[start:])}


def plugin_problem(plugins_cli_output: str) -> str | None:
    plugins = plugin_info(plugins_cli_output)
    if "ml_platform" not in plugins:
        return f"plugin ml_platform not loaded (loaded: {sorted(plugins)})"
    text = json.dumps(plugins["ml_platform"])
    missing = [part for part, ok in (("macro image_version", "image_version" in text),
                                     ("macro flavor_limits", "flavor_limits" in text),
                                     ("FlavorLink", "FlavorLink" in text or "Flavor" in text),
                                     ("/ml-platform app", "/ml-platform" in text)) if not ok]
    return f"plugin ml_platform lacks {', '.join(missing)}" if missing else None


LABEL_KEYS = tuple(f"org.opencontainers.image.{k}" for k in ("title", "version", "revision", "created", "source"))


def label_problem(labels: dict[str, str]) -> str | None:
    missing = [k for k in LABEL_KEYS if k not in labels]
    if missing:
        return f"labels missing: {missing}"
    if labels["org.opencontainers.image.revision"] in ("", "unknown"):
        return "org.opencontainers.image.revision is empty"
    if not labels.get("io.ml-platform.lock.fingerprint", "").startswith("sha256:"):
        return "io.ml-platform.lock.fingerprint is not a sha256"
    return None


BUILD_RECORD_LABELS = {"version": "org.opencontainers.image.version", "revision": "org.opencontainers.image.revision",
                       "created": "org.opencontainers.image.created", "lock_fingerprint": "io.ml-platform.lock.fingerprint",
                       "airflow_version": "io.ml-platform.airflow.version", "python_version": "io.ml-platform.python.version"}


def build_record_problem(rec: dict | None, labels: dict[str, str], python_version: str) -> str | None:
    if rec is None:
        return "the plugin shows no build record (ML_PLATFORM_IMAGE_VERSION unset)"
    wrong = {k: (rec.get(k), labels.get(lbl)) for k, lbl in BUILD_RECORD_LABELS.items() if rec.get(k) != labels.get(lbl)}
    if wrong:
        return f"the plugin's build record differs from the labels: {wrong}"
    if rec["python_version"] != python_version:
        return f"the image runs Python {python_version}, its label says {rec['python_version']}"
    return None


def executors_problem(loaded: dict, wanted: list[str]) -> str | None:
    """Every configured executor setting resolved to as many classes as it names, none failing."""
    from ...executors import EXECUTOR_CLASSES, executor_names

    bad = {}
    for setting in wanted:
        got = loaded.get(setting)
        want = [EXECUTOR_CLASSES.get(n, n) for n in executor_names(setting)]
        if got != want:
            bad[setting] = got
    return f"executors do not load in the image: {bad}" if bad else None


def bundle_class_problem(loaded: dict, classpath: str) -> str | None:
    """The configured DAG bundle class imports in the image and is one of Airflow's bundles."""
    if loaded.get("class") != classpath:
        return f"{classpath} loads as {loaded.get('class')}"
    return None if loaded.get("is_bundle") else f"{classpath} is not a BaseDagBundle"


def dagbag_problem(result: dict, expected: set[str] | None) -> str | None:
    if result["errors"]:
        return f"import errors: {result['errors']}"
    if expected is not None and not (len(result["dags"]) >= len(expected) > 0):
        return f"{len(result['dags'])} DAGs, expected at least {len(expected)}: {result['dags']}"
    return None


def _fact(facts: dict, group: str, name: str):
    errors = facts.get("errors", {})
    if "probe" in errors:
        raise _Missing(errors["probe"])
    if f"{group}.{name}" in errors:
        raise _Missing(errors[f"{group}.{name}"].strip().splitlines()[-1])
    return facts[group][name]


class _Missing(Exception):
    pass


def _judge(group: str, name: str, fn) -> Result:
    try:
        problem = fn()
    except _Missing as e:
        problem = f"the probe could not gather it: {e}"
    except Exception as e:  # noqa: BLE001 - a rule that breaks on odd facts fails its check, with the reason
        problem = f"{type(e).__name__}: {e}"
    return Result(group, name, problem is None, problem or "")


def judge_deps(facts: dict, pins: dict[str, str]) -> list[Result]:
    def pins_ok():
        wrong = wrong_pins(_fact(facts, "deps", "distributions"), pins)
        return f"pinned vs installed: {wrong}" if wrong else None

    def pip_check_ok():
        pc = _fact(facts, "deps", "pip_check")
        return None if pc["returncode"] == 0 else f"uv pip check: {pc['output'].strip()}"

    def leftovers_ok():
        left = _fact(facts, "deps", "leftovers")
        return f"left in the image: {left}" if left else None

    def permissions_ok():
        perms = _fact(facts, "deps", "permissions")
        bad = {k: v for k, v in perms.items() if v}
        return f"setuid/setgid programs or group/other-writable venv files: {bad}" if bad else None

    return [_judge("deps", "pins installed", pins_ok), _judge("deps", "uv pip check", pip_check_ok),
            _judge("deps", "bytecode fresh", lambda: bytecode_problem(_fact(facts, "deps", "bytecode"))),
            _judge("deps", "no leftovers", leftovers_ok),
            _judge("deps", "no setuid, venv root-writable only", permissions_ok)]


def judge_code(facts: dict, *, airflow_version: str, labels: dict[str, str], baked_dags: set[str],
               examples: bool, executors: list[str] = ()) -> list[Result]:
    def airflow_ok():
        v = _fact(facts, "code", "airflow_version")
        if v != airflow_version or labels.get("io.ml-platform.airflow.version") != airflow_version:
            return f"Airflow {v} in the image, label {labels.get('io.ml-platform.airflow.version')}, configured {airflow_version}"
        return None

    def user_ok():
        u = _fact(facts, "code", "user")
        return None if u == ["50000", "0", "/opt/airflow"] else f"runs as uid/gid/AIRFLOW_HOME {u}, not 50000/0//opt/airflow"

    def operators_ok():
        f = _fact(facts, "code", "operators_file")
        return None if f.startswith("/opt/venv/lib/python") else f"ml_platform imported from {f}, not /opt/venv"

    out = [_judge("code", "airflow version", airflow_ok), _judge("code", "uid 50000 gid 0", user_ok),
           _judge("code", "labels", lambda: label_problem(labels)),
           _judge("code", "operators import", operators_ok),
           _judge("code", "plugin loads", lambda: plugin_problem(_fact(facts, "code", "plugins_cli"))),
           _judge("code", "build record", lambda: build_record_problem(
               _fact(facts, "code", "build_record"), labels, _fact(facts, "code", "python_version")))]
    from ...deploy.managed import BUNDLE_CLASS

    out.append(_judge("code", "DAG bundle class loads",
                      lambda: bundle_class_problem(_fact(facts, "code", "bundle_class"), BUNDLE_CLASS)))
    if executors:
        out.append(_judge("code", "executors load (" + "; ".join(executors) + ")",
                          lambda: executors_problem(_fact(facts, "code", "executors"), list(executors))))
    for folder, backend in dag_folders(Path() if examples else None):
        expected = baked_dags if folder == BAKED_DAGS else None

        def dag_ok(folder=folder, backend=backend, expected=expected):
            result = _fact(facts, "code", f"dagbag:{folder}:{backend}")
            if folder == EXAMPLES and result != {"dags": ["example_job_operator"], "errors": {}}:
                return f"examples: {result}"
            return dagbag_problem(result, expected)

        out.append(_judge("code", f"DAGs import ({folder}, {backend})", dag_ok))
    return out


# ---------------------------------------------------------------- the API server
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get_json(url: str, timeout: float = 5, token: str | None = None):
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return r.status, json.load(r)


def _status(url: str, timeout: float = 5, headers: dict | None = None) -> int:
    """The HTTP status of a GET (an error status is an answer, not an exception)."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=timeout) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


DB = "/tmp/airflow.db"
# The metadata DB: migrated by the image's own Airflow, or copied from the cache (a DB that Airflow
# migrated from the same pins: the schema is a function of the installed Airflow and providers). The
# server runs the core API only (health and the plugin's app live there; the task execution API, which
# only workers call, is left out: it costs seconds of start-up).
API_START = (f"if [ -s /cache/airflow.db ]; then cp /cache/airflow.db {DB}; "
             f"else airflow db migrate >/tmp/migrate.log 2>&1 || {{ cat /tmp/migrate.log; exit 1; }}; "
             f"if [ -d /cache ]; then cp {DB} /cache/airflow.db.part && mv /cache/airflow.db.part /cache/airflow.db; fi; fi; "
             "printf '{\"%s\": \"%s\"}' \"$CHECK_USER\" \"$CHECK_PASSWORD\" > /tmp/passwords.json; "
             "exec airflow api-server --port 8080 --workers 1 --apps core")
# Authentication on, as in an environment (the image's default): Airflow's SimpleAuthManager with one
# viewer whose password is made per start; the plugin's page must refuse anyone else (issue 33).
CHECK_USER = "platform-check"


class ApiServer:
    """The image's Airflow API server on a free local port, its metadata DB migrated in the container (or,
    with db_cache, copied from a DB migrated on the same dependency layers)."""

    def __init__(self, engine: ContainerEngine, image: str, *, db_cache: Path | None = None, timeout: float = 180):
        self.engine, self.image, self.timeout, self.db_cache = engine, image, timeout, db_cache
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.container: Container | None = None
        self.user, self.password = CHECK_USER, secrets.token_urlsafe(18)

    def __enter__(self) -> ApiServer:
        volumes = []
        if self.db_cache is not None:
            self.db_cache.mkdir(parents=True, exist_ok=True)
            self.db_cache.chmod(0o777)  # the server runs as uid 50000
            volumes.append(f"{self.db_cache}:/cache")
        try:
            self.container = self.engine.start(
                self.image, ["bash", "-c", API_START], ports=[f"127.0.0.1:{self.port}:8080"], volumes=volumes,
                env={"AIRFLOW__CORE__LOAD_EXAMPLES": "False", "AIRFLOW__API__WORKERS": "1",
                     "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{DB}", "ML_PLATFORM_BACKEND": "docker",
                     "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
                     "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{self.user}:viewer",
                     "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": "/tmp/passwords.json",
                     "CHECK_USER": self.user, "CHECK_PASSWORD": self.password})
        except EngineError as exc:
            raise RuntimeError(exc.message) from None
        return self

    def wait_healthy(self) -> dict:
        """Poll the health endpoint (cheap); ask the engine whether the container still runs only every 2 s
        (a CLI call costs the engine and this machine more than a refused connection)."""
        deadline = time.monotonic() + self.timeout
        next_state = time.monotonic() + 2
        while True:
            try:
                status, body = _get_json(self.url + "/api/v2/monitor/health", 3)
                if status == 200:
                    return body
            except (OSError, ValueError):
                pass
            now = time.monotonic()
            if now > deadline:
                raise TimeoutError(f"no healthy answer within {self.timeout:.0f} s; last log lines: {self.logs()}")
            if now > next_state:
                next_state = now + 2
                if self.container is None or not self.container.running():
                    raise RuntimeError(f"the API server exited: {self.logs()}")
            time.sleep(0.2)

    def token(self) -> str:
        """A JWT for the check's viewer, from the API server's own `POST /auth/token`."""
        req = urllib.request.Request(self.url + "/auth/token", method="POST",
                                     data=json.dumps({"username": self.user, "password": self.password}).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.load(r)["access_token"]

    def logs(self) -> str:
        return (self.container.logs(tail=15) if self.container else "").strip()[-1500:]

    def __exit__(self, *exc) -> None:
        if self.container:
            self.container.remove()


PLATFORM_ROUTES = ("/ml-platform/", "/ml-platform/pipelines", "/ml-platform/status", "/ml-platform/flavors",
                   "/ml-platform/build")


def anonymous_statuses(url: str) -> dict[str, int]:
    """What each route of the plugin's page answers a request without credentials."""
    return {path: _status(url + path, 10) for path in PLATFORM_ROUTES}


def api_problem(health: dict, flavors: dict, build: dict, anonymous: dict[str, int] | None = None) -> str | None:
    if health.get("metadatabase", {}).get("status") != "healthy":
        return f"health: {health}"
    open_routes = {p: s for p, s in (anonymous or {}).items() if s not in (401, 403)}
    if open_routes:
        return f"the platform page answers without credentials (want 401/403): {open_routes}"
    if not {"cpu-small", "gpu-a100"} <= set(flavors.get("flavors", {})):
        return f"/ml-platform/flavors: {flavors}"
    if not build.get("airflow_version"):
        return f"/ml-platform/build: {build}"
    return None


def check_api(engine: ContainerEngine, image: str, db_cache: Path | None = None) -> list[Result]:
    def ok():
        with ApiServer(engine, image, db_cache=db_cache) as api:
            health = api.wait_healthy()
            token = api.token()
            flavors = _get_json(api.url + "/ml-platform/flavors", 10, token)[1]
            build = _get_json(api.url + "/ml-platform/build", 10, token)[1]
            anonymous = anonymous_statuses(api.url)
        return api_problem(health, flavors, build, anonymous)

    return [_judge("api", "API server healthy, plugin view answers a viewer and refuses anonymous requests", ok)]


# ---------------------------------------------------------------- the run make build does
@dataclass
class Expect:
    """What the checks compare the image against, from the project."""

    pins: dict[str, str]
    airflow_version: str
    baked_dags: set[str]
    examples: Path | None
    dockerfile: Path
    executors: list[str] = field(default_factory=list)  # every environment's executor setting

    @classmethod
    def from_project(cls, root: Path, python: str, airflow_version: str) -> Expect:
        examples = root / "examples" / "dags"
        from ...executors import configured_executors

        return cls(expected_pins(root, python), airflow_version, {f.stem for f in (root / "dags").glob("*.py")},
                   examples if examples.is_dir() else None, root / "Dockerfile", configured_executors(root))


def uv_version(uv: str) -> str:
    return subprocess.run([uv, "--version"], capture_output=True, text=True).stdout.strip()


def run_checks(engine: ContainerEngine, image: str, info: dict, expect: Expect, *, previous: dict | None = None,
               full: bool = False, uv: str | None = None, cache_dir: Path | None = None) -> tuple[list[GroupRun], dict]:
    """Run the groups side by side; skip deps when `previous` (the build record's `checks`) holds a pass on
    the same dependency key, unless full. cache_dir keeps the API check's migrated DB per dependency key
    (not used when full). Returns the runs and the `checks` entry for the build record."""
    uv = uv or find_uv()
    labels = (info.get("Config") or {}).get("Labels") or {}
    dep_layers = dependency_layers((info.get("RootFS") or {}).get("Layers") or [], expect.dockerfile)
    key = dependency_key(dep_layers, expect.pins, uv_version(uv))
    # the API check's migrated DB: the schema follows the installed Airflow and providers, i.e. the pins
    db_key = "sha256:" + hashlib.sha256(json.dumps([expect.airflow_version, sorted(expect.pins.items()),
                                                    checks_fingerprint()]).encode()).hexdigest()
    prev = (previous or {}).get("deps") or {}
    reuse = not full and prev.get("key") == key and prev.get("passed") is True

    def timed(group: str, fn) -> GroupRun:
        t0 = time.perf_counter()
        results = fn()
        return GroupRun(group, results, round(time.perf_counter() - t0, 2))

    jobs = {
        "code": lambda: judge_code(probe_code(engine, image, expect.examples, expect.executors),
                                   airflow_version=expect.airflow_version, labels=labels, baked_dags=expect.baked_dags,
                                   examples=expect.examples is not None, executors=expect.executors),
        "api": lambda: check_api(engine, image, None if full or cache_dir is None else cache_dir / f"api-db-{db_key[7:23]}"),
    }
    if not reuse:
        jobs["deps"] = lambda: judge_deps(probe_deps(engine, image, uv), expect.pins)
    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        futures = {g: pool.submit(timed, g, fn) for g, fn in jobs.items()}
        runs = {g: f.result() for g, f in futures.items()}
    if reuse:
        runs["deps"] = GroupRun("deps", skipped=f"passed on these dependency layers in {prev.get('image_id', '?')[:19]}")
    record = {g: {"passed": r.ok, "seconds": r.seconds, "image_id": info.get("Id"),
                  "failed": [f"{x.name}: {x.detail}" for x in r.results if not x.ok]}
              for g, r in runs.items() if not r.skipped}
    record["deps"] = prev if reuse else {**record["deps"], "key": key, "layers": dep_layers}
    return [runs[g] for g in GROUPS], record
