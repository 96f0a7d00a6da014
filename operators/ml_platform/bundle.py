"""A versioned DAG bundle that follows an environment's live pointer (`make deploy` / `make rollback`).

The store's layout and documents (``P/current.json`` -> ``P/bundles/<version>/``, the manifest, the version
hash) are defined once in ``ml_platform.bundle_format``, shared with `make deploy`; nothing here writes
to the store.

The DAG processor (no ``version``) reads the pointer on each refresh and, when it names a version not
yet on this machine, fetches it into ``<bundle storage>/<name>/versions/<version>/``: every file into a
temporary directory, each checked against the manifest's sha256 (and the manifest against the version
name, which is a hash of it), then one rename. A worker running a task of a DAG run started on ``b-1``
gets ``version="b-1"`` from Airflow and reads exactly ``b-1``'s files, whatever is live now.

A refresh that cannot get a good version (store unreachable, manifest missing, a file whose sha256
differs) keeps serving the last good version and logs one line saying which version, which file and
what to do. Backends: S3 through the amazon provider's S3 hook (``aws_conn_id``, the usual credential
chain, an optional ``endpoint_url``), or a folder with the same layout (the `local` environment).
"""

from __future__ import annotations

import hashlib
import importlib
import json
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

from airflow.dag_processing.bundles.base import BaseDagBundle, BundleVersion, get_bundle_tracking_dir

from . import bundle_format as trust
from .bundle_format import MANIFEST, POINTER, FormatError, Manifest, Pointer, join as _join, manifest_key, \
    pointer_key, safe_rel, version_of, version_prefix

log = logging.getLogger(__name__)

__all__ = ["BundleFault", "PlatformDagBundle", "compile_version", "preload_for_parsing", "version_of",
           "MANIFEST", "POINTER"]
LAST_GOOD = "live-version"  # in base_dir: the version this machine served last (survives restarts)
# imported lazily by Airflow's DAG serialization in each parsing child (every task is checked against them)
SERIALIZATION_IMPORTS = ("airflow.providers.standard.operators.trigger_dagrun",
                         "airflow.providers.standard.sensors.external_task")


class BundleFault(Exception):
    """A version cannot be served: the message says which version, which file and what to do."""


def compile_version(folder: Path) -> None:
    """Write the bytecode of a fetched version's .py files next to them (``__pycache__``), once.

    The image sets PYTHONDONTWRITEBYTECODE, so without this the DAG processor compiles every DAG file
    again on each re-parse (every ``min_file_process_interval``); Python still reads a valid .pyc. The
    version is immutable and was just verified, so its bytecode stays valid (mtime and size checked by
    Python as usual; the rename keeps both). A file that does not compile gets no .pyc and fails at
    import as it would anyway, with Airflow's import error."""
    import compileall

    compileall.compile_dir(str(folder), quiet=2, workers=1)


class _FolderReader:
    def __init__(self, root: str):
        self.root = Path(root)
        self.where = f"folder {root}"

    def get(self, key: str) -> bytes | None:
        p = self.root / key
        try:
            return p.read_bytes()
        except FileNotFoundError:
            if not self.root.is_dir():
                raise BundleFault(f"the bundle store folder {self.root} does not exist") from None
            return None
        except OSError as exc:
            raise BundleFault(f"cannot read {p}: {exc}") from None


class _S3Reader:
    def __init__(self, bucket: str, aws_conn_id: str | None, endpoint_url: str | None):
        self.bucket, self.aws_conn_id, self.endpoint_url = bucket, aws_conn_id, endpoint_url
        self.where = f"s3://{bucket}" + (f" at {endpoint_url}" if endpoint_url else "")
        self._client = None

    @property
    def client(self):
        if self._client is None:
            from airflow.providers.amazon.aws.hooks.s3 import S3Hook

            hook = S3Hook(aws_conn_id=self.aws_conn_id)
            if self.endpoint_url:  # the connection's credentials and settings, this store's endpoint
                self._client = hook.get_session(region_name=hook.region_name).client(
                    "s3", endpoint_url=self.endpoint_url, config=hook.config, verify=hook.verify)
            else:
                self._client = hook.conn
        return self._client

    def get(self, key: str) -> bytes | None:
        try:
            return self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except Exception as exc:  # noqa: BLE001 - turned into one clear line
            code = getattr(exc, "response", {}).get("Error", {}).get("Code", "")
            if code in ("NoSuchKey", "404"):
                return None
            raise BundleFault(f"cannot read s3://{self.bucket}/{key} ({code or type(exc).__name__}: "
                              f"{str(exc)[:200]}); check the connection '{self.aws_conn_id}' and the "
                              f"endpoint") from None


def preload_for_parsing() -> tuple[type, str | None]:
    """What a parsing process would load on its first job and first ``Asset``, loaded now: the job
    backend's operator class, the flavor catalog, Airflow's asset URI handlers and the operator classes
    DAG serialization imports. Returns the operator class and, when Airflow's lazy loads failed (best
    effort: a child loads what is missing itself), why. Raises when the backend or the catalog cannot
    be loaded. Used by the bundle before the DAG processor forks, and by bench/parse."""
    from .flavors import load_catalog
    from .job import job_operator_class

    operator = job_operator_class()
    load_catalog()
    try:
        from airflow.sdk.providers_manager_runtime import ProvidersManagerTaskRuntime

        ProvidersManagerTaskRuntime().initialize_providers_asset_uri_resources()
        for name in SERIALIZATION_IMPORTS:
            importlib.import_module(name)
    except Exception as exc:  # noqa: BLE001
        return operator, f"{type(exc).__name__}: {str(exc)[:200]}"
    return operator, None


class PlatformDagBundle(BaseDagBundle):
    """The environment's bundle store, followed through its pointer; any earlier version on request.

    :param prefix: the environment's stable prefix (the pointer is ``<prefix>/current.json``)
    :param store: ``s3`` (default) or ``local`` (a folder: ``store_path``)
    :param bucket_name: S3 bucket (``store: s3``)
    :param aws_conn_id: Airflow connection for S3 (credentials; the usual AWS chain when it has none)
    :param endpoint_url: S3-compatible endpoint (else the connection's, else AWS)
    :param store_path: the folder holding the store (``store: local``)
    :param keep_local: fetched versions kept on this machine besides the live one and those in use
    :param environment: the environment's name, which signed statements must name (issue 38)
    :param allowed_keys: public keys (hex ed25519) allowed to sign versions; checked when given
    :param require_signatures: refuse unsigned versions (else an unsigned version is served, a signed one
        must verify against allowed_keys)
    """

    supports_versioning = True

    def __init__(self, *, prefix: str = "", store: str = "s3", bucket_name: str | None = None,
                 aws_conn_id: str | None = "aws_default", endpoint_url: str | None = None,
                 store_path: str | None = None, keep_local: int = 3, environment: str | None = None,
                 allowed_keys: list[str] | None = None, require_signatures: bool = False, **kwargs) -> None:
        super().__init__(**kwargs)
        self.prefix = prefix.strip("/")
        self.keep_local = keep_local
        self.environment = environment or ""
        self.allowed_keys = [k.strip().lower() for k in allowed_keys or []]
        for k in self.allowed_keys:
            if trust.key_problem(k):
                raise ValueError(f"bundle '{self.name}': allowed key {k[:20]!r} {trust.key_problem(k)}")
        self.require_signatures = bool(require_signatures)
        if self.require_signatures and not self.allowed_keys:
            raise ValueError(f"bundle '{self.name}': require_signatures needs allowed_keys")
        self._refused: tuple[str, str] | None = None  # the last (version, reason) logged: logged once
        if store == "local":
            if not store_path:
                raise ValueError(f"bundle '{self.name}': store 'local' needs store_path")
            self._reader = _FolderReader(store_path)
        elif store == "s3":
            if not bucket_name:
                raise ValueError(f"bundle '{self.name}': store 's3' needs bucket_name")
            self._reader = _S3Reader(bucket_name, aws_conn_id, endpoint_url)
        else:
            raise ValueError(f"bundle '{self.name}': store must be 's3' or 'local', not {store!r}")
        self._live: str | None = None  # the version this (DAG processor) instance serves

    def __repr__(self) -> str:
        return f"<PlatformDagBundle(name={self.name!r}, store={self._reader.where!r}, prefix={self.prefix!r}, " \
               f"version={self.version!r})>"

    # --- what Airflow calls -------------------------------------------------------------------------
    @property
    def path(self) -> Path:
        version = self.version or self._live or self._last_good()
        return self.versions_dir / version if version else self.base_dir / "no-version-yet"

    def get_current_version(self) -> BundleVersion | None:
        version = self.version or self._live
        return BundleVersion(version=version) if version else None

    def initialize(self) -> None:
        if self.version:
            try:
                self._fetch(self.version)
            except BundleFault as exc:
                raise BundleFault(f"bundle '{self.name}' version {self.version}: {exc}") from None
        else:  # the DAG processor (or a CLI parse): it forks a child per file after this
            self._follow_pointer(initial=True)
            self._warm_parsing()
        super().initialize()

    def _warm_parsing(self) -> None:
        """Load once, in the DAG processor's manager, what each parsing child would otherwise load again.

        Airflow 3.3's DAG processor forks one child per DAG file, on every parse loop, and before the fork
        pre-imports only the ``airflow.*`` modules the file names (``[dag_processor]
        parsing_pre_import_modules``). A rendered file names ``ml_platform.job``: its backend (the
        cncf.kubernetes provider and the kubernetes client, or the docker provider) and the flavor catalog
        are loaded on the first job. Airflow itself loads the providers' asset URI handlers on a file's
        first ``Asset`` and a few operator classes when it serializes the DAG. Loaded here, every child
        inherits them. Gated by the same option as Airflow's own pre-import. A failure is one warning line
        and each DAG file then reports its own import error, as it would without this."""
        from airflow.configuration import conf

        if not conf.getboolean("dag_processor", "parsing_pre_import_modules", fallback=True):
            return
        t0 = time.perf_counter()
        try:
            operator, lazy_problem = preload_for_parsing()
        except Exception as exc:  # noqa: BLE001 - the DAG files report it with their own import error
            log.warning("bundle '%s': not pre-importing the job backend for parsing (%s: %s); each DAG file "
                        "reports it as an import error", self.name, type(exc).__name__, str(exc)[:300])
            return
        from .flavors import catalog_path

        airflow_lazy = (f" (not the asset URI handlers: {lazy_problem})" if lazy_problem
                        else " and the asset URI handlers")
        log.info("bundle '%s': pre-imported %s, the flavor catalog %s%s for the parsing processes (%.2f s)",
                 self.name, operator.__name__, catalog_path(), airflow_lazy, time.perf_counter() - t0)

    def refresh(self) -> None:
        if self.version:
            raise BundleFault(f"bundle '{self.name}' is pinned to {self.version}: a pinned version never changes")
        self._follow_pointer(initial=False)

    def status(self) -> dict:
        """What this environment runs, for the plugin's page: the store's live pointer (version, when it
        was switched, its commit and image digest, the versions before it) and the version this machine
        serves. Never raises: a store that cannot be read is an `error` entry."""
        out: dict = {"bundle": self.name, "store": self._reader.where, "prefix": self.prefix,
                     "served_here": self._live or self._last_good(), "live": None, "error": None}
        try:
            raw = self._reader.get(pointer_key(self.prefix))
            pointer = json.loads(raw) if raw is not None else None
        except Exception as exc:  # noqa: BLE001 - shown on the page, one line
            out["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            return out
        if not isinstance(pointer, dict):
            out["error"] = f"no {POINTER} under '{self.prefix}': nothing is deployed (run make deploy)"
            return out
        out["live"] = {k: pointer.get(k) for k in ("version", "switched_at", "commit", "image_digest")}
        out["live"]["history"] = list(pointer.get("history") or [])[:5]
        out["signatures"] = ("required" if self.require_signatures else "checked when present" if self.allowed_keys
                             else "not checked")
        out["refused"] = self.refusal(pointer)
        return out

    def refusal(self, pointer: dict) -> str | None:
        """Why the version `pointer` names would not be served here (signature, image), or None: the checks
        the DAG processor makes before activating it, without fetching its files."""
        version = pointer.get("version")
        try:
            statement = self._verify_pointer(pointer)
            raw = self._reader.get(manifest_key(self.prefix, str(version)))
            if raw is None:
                return f"{version} has no {MANIFEST}"
            self._verify_version(str(version), raw, json.loads(raw), statement)
        except (BundleFault, ValueError) as exc:
            return str(exc)
        return None

    # --- the work -----------------------------------------------------------------------------------
    def _last_good(self) -> str | None:
        p = self.base_dir / LAST_GOOD
        try:
            v = p.read_text().strip()
        except OSError:
            return None
        return v if v and (self.versions_dir / v).is_dir() else None

    def _follow_pointer(self, *, initial: bool) -> None:
        serving = self._live or self._last_good()
        wanted = None
        try:
            raw = self._reader.get(pointer_key(self.prefix))
            if raw is None:
                raise BundleFault(f"no {POINTER} under '{self.prefix}' in {self._reader.where}: nothing is deployed "
                                  f"(run make deploy)")
            try:
                parsed = Pointer.parse(raw, self.prefix)
                pointer, wanted = parsed.to_dict(), parsed.version
            except FormatError:
                raise BundleFault(f"{pointer_key(self.prefix)} in {self._reader.where} is not a pointer "
                                  f"(no 'version'); run make deploy or make rollback to rewrite it") from None
            if wanted != serving:
                statement = self._verify_pointer(pointer)  # before anything of the version is read
                final = self._fetch(wanted, statement)
                self._verify_local(wanted, final, statement)
        except BundleFault as exc:
            if serving is None:
                raise BundleFault(f"bundle '{self.name}': {exc}") from None
            # one line per refused version and reason; the last good version keeps serving
            if self._refused != (str(wanted), str(exc)):
                log.error("bundle '%s': keeping %s live: %s", self.name, serving, exc)
                self._refused = (str(wanted), str(exc))
            self._live = serving
            return
        self._refused = None
        if wanted != self._live:
            if self._live:
                log.info("bundle '%s': %s is live (was %s)", self.name, wanted, self._live)
            self._live = wanted
            self._write_last_good(wanted)
            self._prune()

    # --- the verify step between fetch and activate (issue 38) ----------------------------------------
    @property
    def _checks_signatures(self) -> bool:
        return self.require_signatures or bool(self.allowed_keys)

    def _verify_pointer(self, pointer: dict) -> dict | None:
        """The pointer's signed statement (None: not checked here, or unsigned where that is allowed)."""
        if not self._checks_signatures or (pointer.get("envelope") is None and not self.require_signatures):
            return None
        try:
            return trust.check_pointer(pointer, self.allowed_keys, environment=self.environment).statement
        except trust.TrustFault as exc:
            raise BundleFault(f"{pointer.get('version')}: refused: {exc}") from None

    def _verify_version(self, version: str, raw: bytes, manifest: dict, statement: dict | None) -> None:
        """Before a version's files are activated: its manifest's signature (when checked here) and whether
        this image can serve it. BundleFault naming the version and the reason otherwise."""
        if self._checks_signatures:
            sig = self._reader.get(trust.manifest_signature_key(self.prefix, version))
            if sig is not None or self.require_signatures:
                try:
                    envelope = json.loads(sig) if sig is not None else None
                    trust.check_manifest(envelope, self.allowed_keys, environment=self.environment, version=version,
                                         manifest_raw=raw, pointer_statement=statement)
                except ValueError:
                    raise BundleFault(f"{version}: refused: its {trust.MANIFEST_SIGNATURE} is not JSON") from None
                except trust.TrustFault as exc:
                    raise BundleFault(f"{version}: refused: {exc}") from None
        problem = trust.this_image_problem(manifest)
        if problem:
            raise BundleFault(f"{version}: refused: this image cannot serve it: {problem}")

    def _verify_local(self, version: str, final: Path, statement: dict | None) -> None:
        """A version fetched earlier on this machine (verified then): the signed pointer must name its manifest."""
        if statement is None:
            return
        try:
            digest = trust.sha256_hex((final / MANIFEST).read_bytes())
        except OSError as exc:
            raise BundleFault(f"{version}: cannot read the fetched manifest ({exc.strerror})") from None
        if statement.get("manifest_sha256") != digest:
            raise BundleFault(f"{version}: refused: the signed pointer names another manifest (sha256 "
                              f"{str(statement.get('manifest_sha256'))[:12]}..., this one has {digest[:12]}...; "
                              f"replayed or tampered)")

    def _write_last_good(self, version: str) -> None:
        self.base_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.base_dir / f".{LAST_GOOD}.{os.getpid()}"
        tmp.write_text(version + "\n")
        os.replace(tmp, self.base_dir / LAST_GOOD)

    def _fetch(self, version: str, statement: dict | None = None) -> Path:
        """Make versions/<version>/ hold exactly that version's verified files (once per machine)."""
        final = self.versions_dir / version
        if final.is_dir():
            return final
        with self.lock():
            if final.is_dir():  # another process fetched it meanwhile
                return final
            vprefix = version_prefix(self.prefix, version)
            mkey = manifest_key(self.prefix, version)
            raw = self._reader.get(mkey)
            if raw is None:
                raise BundleFault(f"{version} has no {MANIFEST} in {self._reader.where} (an unfinished upload, or "
                                  f"removed by make gc); deploy again or roll back to a complete version")
            try:
                manifest = Manifest.parse(raw, mkey)
                files, content_version = manifest.files, manifest.content_version()
            except FormatError:
                raise BundleFault(f"{mkey} is not a bundle manifest; deploy again") from None
            if content_version != version:
                raise BundleFault(f"{mkey} does not hash to {version} (it was changed after the "
                                  f"deploy); deploy again")
            self._verify_version(version, raw, manifest.to_dict(), statement)  # signature and image, before any file
            self.versions_dir.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=f".{version}.", dir=self.versions_dir))
            try:
                for rel, meta in sorted(files.items()):
                    pure = safe_rel(rel)
                    if pure is None:
                        raise BundleFault(f"{version}: the manifest names an unsafe path {rel!r}; deploy again")
                    data = self._reader.get(_join(vprefix, rel))
                    if data is None:
                        raise BundleFault(f"{version}: file {rel} is missing from the store; deploy again")
                    digest = hashlib.sha256(data).hexdigest()
                    if digest != meta.sha256:
                        raise BundleFault(f"{version}: file {rel} has sha256 {digest[:12]}..., the manifest says "
                                          f"{meta.sha256[:12]}... (changed in the store after the deploy); "
                                          f"deploy again or roll back")
                    dest = tmp.joinpath(*pure.parts)
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    dest.write_bytes(data)
                (tmp / MANIFEST).write_bytes(raw)
                compile_version(tmp)
                os.chmod(tmp, 0o755)
                os.rename(tmp, final)  # complete and verified, or not there at all
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
            log.info("bundle '%s': fetched %s (%d files, sha256 verified)", self.name, version, len(files))
        return final

    def _prune(self) -> None:
        """Drop fetched versions this machine no longer needs: not live, not among the `keep_local` newest,
        and not tracked by Airflow as in use by a task here (those are Airflow's own cleanup's to remove)."""
        try:
            tracked = {p.name for p in get_bundle_tracking_dir(self.name).iterdir()}
        except OSError:
            tracked = set()
        try:
            dirs = [p for p in self.versions_dir.iterdir() if p.is_dir() and not p.name.startswith(".")]
        except OSError:
            return
        dirs.sort(key=lambda p: p.stat().st_mtime, reverse=True)
        for p in dirs[self.keep_local + 1:]:
            if p.name != self._live and p.name not in tracked:
                shutil.rmtree(p, ignore_errors=True)
