"""The image checks' probe: run INSIDE the image under test by its own Python, in one container start per
user (never imported by platformctl, which only mounts this file; it imports no platformctl either).

    python /platform-checks.py '{"groups": ["deps"], "uv": "/uv"}'                  (as root)
    python /platform-checks.py '{"groups": ["code"], "dag_folders": [["/opt/airflow/dags", "docker"]]}'

It gathers facts and judges nothing: the rules live in platformctl/image/checks (host side), which the
build and the tests both call. The last stdout line is `PLATFORM-CHECKS <json>`: {group: {fact: value},
"seconds": {fact: s}, "errors": {fact: traceback}}. A fact that raised is in "errors", not missing silently.

deps: what the dependency layers hold (distributions and versions, `uv pip check`, bytecode freshness of
      every module of the venv, installer leftovers). Needs root (/root/.cache) and uv mounted at spec["uv"].
code: what the code layers do, with Airflow imported once: the Airflow version, the user, the operators
      package, the plugin's build record, `airflow plugins --output json` (in process), each configured
      executor's class loaded through ExecutorLoader, the DAG bundle class imported as the DAG processor
      imports its classpath, and a DagBag of every (folder, backend) pair.
"""

import contextlib
import importlib.util
import io
import json
import os
import subprocess
import sys
import sysconfig
import time
import traceback

MARK = "PLATFORM-CHECKS "


def _read(path):
    with open(path, "rb") as f:
        return f.read()


# ---------------------------------------------------------------- deps
def distributions():
    import importlib.metadata as m

    return {d.metadata["Name"]: d.version for d in m.distributions()}


def pip_check(uv):
    p = subprocess.run([uv, "pip", "check", "--python", sys.executable], capture_output=True, text=True,
                       env={**os.environ, "UV_NO_CACHE": "1"})
    return {"returncode": p.returncode, "output": (p.stdout + p.stderr)[-4000:]}


def bytecode():
    """How many modules of the venv's site-packages have bytecode that Python would use as it is, and which
    lack it or have stale bytecode. A module without bytecode is only an error if it compiles: packages
    ship some files that are not Python 3 (templates, vendored Python 2 code), which installers skip too."""
    site = sysconfig.get_paths()["purelib"]
    fresh, missing, stale, uncompilable = 0, [], [], 0
    for top, dirs, files in os.walk(site):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        for name in files:
            if not name.endswith(".py"):
                continue
            path = os.path.join(top, name)
            cache = importlib.util.cache_from_source(path)
            try:
                with open(cache, "rb") as f:
                    header = f.read(16)
            except FileNotFoundError:
                try:
                    compile(_read(path), path, "exec", dont_inherit=True)
                except (SyntaxError, ValueError):
                    uncompilable += 1
                else:
                    missing.append(os.path.relpath(path, site))
                continue
            flags = int.from_bytes(header[4:8], "little")
            st = os.stat(path)
            if header[:4] != importlib.util.MAGIC_NUMBER:
                ok = False
            elif flags == 0:  # timestamp-based: source mtime and size as the import system checks them
                ok = (int.from_bytes(header[8:12], "little") == int(st.st_mtime) & 0xFFFFFFFF
                      and int.from_bytes(header[12:16], "little") == st.st_size & 0xFFFFFFFF)
            else:  # hash-based
                ok = header[8:16] == importlib.util.source_hash(_read(path))
            if ok:
                fresh += 1
            else:
                stale.append(os.path.relpath(path, site))
    return {"site": site, "fresh": fresh, "missing": missing, "stale": stale, "uncompilable": uncompilable}


def leftovers():
    # BuildKit leaves the (empty) mount points of cache and tool mounts; nothing may be inside them. The
    # Airflow lock is unpacked into uv's temporary cache under /tmp: none of it may stay either (the
    # lock files' bind mounts leave empty files there). This probe is mounted at /, not under /tmp.
    out = subprocess.run(
        ["bash", "-c", "find /root/.cache /home/airflow/.cache /opt/uv /run/secrets -mindepth 1 -not -type d 2>/dev/null; "
                       "find /tmp -mindepth 1 -not -type d -size +0c; "
                       "command -v uv gcc cc pip 2>/dev/null; true"],
        capture_output=True, text=True).stdout
    return out.split()


def permissions():
    # No setuid/setgid program anywhere (the base's su, mount, passwd lose their bits), and nothing in the
    # venv writable by group or others: the airflow user is in group 0, so group-writable is writable by it.
    special = subprocess.run(["bash", "-c", "find / -xdev -type f -perm /6000 2>/dev/null; true"],
                             capture_output=True, text=True).stdout.split()
    writable = subprocess.run(["bash", "-c", "find /opt/venv -xdev -perm /0022 ! -type l 2>/dev/null; true"],
                              capture_output=True, text=True).stdout.split()
    return {"setuid_or_setgid": special, "venv_writable": writable}


# ---------------------------------------------------------------- code
def user():
    return [str(os.getuid()), str(os.getgid()), os.environ.get("AIRFLOW_HOME", "")]


def python_version():
    return "%d.%d" % sys.version_info[:2]


def airflow_version():
    import airflow

    return airflow.__version__


def operators_file():
    import ml_platform

    return ml_platform.__file__


def plugin_build_record():
    # what the plugin's /ml-platform/build shows (ml_platform.views answers it from this record)
    from ml_platform.buildinfo import build_record

    return build_record()


def plugins_cli():
    """`airflow plugins --output json`, run in this process (Airflow is imported once): its stdout."""
    from airflow.cli.cli_parser import get_parser

    args = get_parser().parse_args(["plugins", "--output", "json"])
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        args.func(args)
    return buf.getvalue()


def executors(settings):
    """Each executor setting (an environment's `executor`, e.g. "CeleryExecutor,KubernetesExecutor") as the
    scheduler and workers load it: [core] executor set to it, then Airflow's ExecutorLoader resolves the names
    and imports each class. {setting: [class paths]} or {setting: "ERROR ..."} with the import's error."""
    from airflow.executors import executor_loader as el

    out = {}
    for setting in settings:
        os.environ["AIRFLOW__CORE__EXECUTOR"] = setting
        for cache in (el._executor_names, el._alias_to_executors_per_team, el._module_to_executors_per_team,
                      el._classname_to_executors_per_team, el._team_name_to_executors):
            cache.clear()
        try:
            names = el.ExecutorLoader.get_executor_names(validate_teams=False)
            classes = []
            for name in names:
                cls, _ = el.ExecutorLoader.import_executor_cls(name)
                classes.append(f"{cls.__module__}.{cls.__qualname__}")
            out[setting] = classes
        except Exception as exc:  # noqa: BLE001 - the host judges it, with the reason
            out[setting] = f"ERROR {type(exc).__name__}: {str(exc)[:500]}"
    os.environ.pop("AIRFLOW__CORE__EXECUTOR", None)
    return out


def bundle_class(classpath):
    """The DAG bundle class as the DAG processor and every worker load it ([dag_processor]
    dag_bundle_config_list's classpath): imported by its dotted path; its bases named. An ImportError (an
    Airflow that lacks what the class imports) is this fact's error, with the traceback's last line."""
    import importlib

    from airflow.dag_processing.bundles.base import BaseDagBundle

    module, _, name = classpath.rpartition(".")
    cls = getattr(importlib.import_module(module), name)
    return {"class": f"{cls.__module__}.{cls.__qualname__}", "is_bundle": issubclass(cls, BaseDagBundle)}


def dagbag(folder, backend):
    from airflow.dag_processing.dagbag import DagBag

    os.environ["ML_PLATFORM_BACKEND"] = backend
    bag = DagBag(folder, safe_mode=False)
    return {"dags": sorted(bag.dag_ids), "errors": {k: str(v)[-2000:] for k, v in bag.import_errors.items()}}


def main(spec):
    facts, seconds, errors = {}, {}, {}

    def fact(group, name, fn, *args):
        t0 = time.perf_counter()
        try:
            facts.setdefault(group, {})[name] = fn(*args)
        except Exception:  # noqa: BLE001 - reported to the host, which fails the check that needed it
            errors[f"{group}.{name}"] = traceback.format_exc()[-3000:]
        seconds[f"{group}.{name}"] = round(time.perf_counter() - t0, 3)

    groups = spec.get("groups", [])
    if "deps" in groups:
        fact("deps", "leftovers", leftovers)  # first: nothing this probe runs may be counted as a leftover
        fact("deps", "distributions", distributions)
        fact("deps", "pip_check", pip_check, spec.get("uv", "/uv"))
        fact("deps", "bytecode", bytecode)
        fact("deps", "permissions", permissions)
    if "code" in groups:
        fact("code", "user", user)
        fact("code", "python_version", python_version)
        fact("code", "airflow_version", airflow_version)
        fact("code", "operators_file", operators_file)
        fact("code", "build_record", plugin_build_record)
        fact("code", "plugins_cli", plugins_cli)
        fact("code", "executors", executors, spec.get("executors", []))
        if spec.get("bundle_class"):
            fact("code", "bundle_class", bundle_class, spec["bundle_class"])
        for folder, backend in spec.get("dag_folders", []):
            fact("code", f"dagbag:{folder}:{backend}", dagbag, folder, backend)
    facts["seconds"], facts["errors"] = seconds, errors
    sys.stdout.write("\n" + MARK + json.dumps(facts) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
