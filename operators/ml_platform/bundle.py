"""A versioned DAG bundle that follows an environment's live pointer (`make deploy` / `make rollback`).

The store's layout and documents (``P/current.json`` -> ``P/bundles/<version>/``, the manifest, the version
hash, the per-version archive, the conditional pointer read) are defined once in
``ml_platform.bundle_format``, shared with `make deploy`; nothing here writes to the store.

The DAG processor (no ``version``) reads the pointer on each refresh and, when it names a version not
yet on this machine, fetches it into ``<bundle storage>/<name>/versions/<version>/``: its archive (one
GET; file by file, 16 at a time, for a version deployed before archives existed) into a temporary
directory, every file checked against the manifest's sha256 (and the manifest against the version name,
which is a hash of it), then one rename, under a machine-wide lock. When nothing changed, a refresh is
one conditional GET of the pointer with no body. A worker running a task of a DAG run started on ``b-1``
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
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from pathlib import Path

from airflow.dag_processing.bundles.base import BaseDagBundle, get_bundle_tracking_dir

try:
    from airflow.dag_processing.bundles.base import BundleVersion
except ImportError:  # Airflow < 3.3: a bundle's current version is the bare version string
    BundleVersion = None

from . import bundle_format as trust
from .bundle_format import (
    ARCHIVE,
    MANIFEST,
    POINTER,
    POINTER_STATE,
    ArchiveError,
    FormatError,
    Manifest,
    Pointer,
    archive_key,
    manifest_key,
    pointer_key,
    read_archive,
    safe_rel,
    version_of,
    version_prefix,
)
from .bundle_format import join as _join

log = logging.getLogger(__name__)

__all__ = [
    "MANIFEST",
    "POINTER",
    "BundleFault",
    "PlatformDagBundle",
    "compile_version",
    "preload_for_parsing",
    "version_of",
]
LAST_GOOD = "live-version"  # in base_dir: the version this machine served last (survives restarts)
FETCH_WORKERS = 16  # parallel GETs for a version without an archive (deployed before archives existed)
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
    workers = FETCH_WORKERS

    def __init__(self, root: str):
        self.root = Path(root)
        self.where = f"folder {root}"

    def get_if_changed(self, key: str, etag: str | None) -> tuple[bytes | None, str | None, bool]:
        """(data, etag, changed): a file's identity (inode, size, mtime) stands for the S3 ETag."""
        p = self.root / key
        try:
            st = p.stat()
        except FileNotFoundError:
            return self.get(key), None, True
        except OSError as exc:
            raise BundleFault(f"cannot read {p}: {exc}") from None
        tag = f"{st.st_ino}-{st.st_size}-{st.st_mtime_ns}"
        if etag is not None and tag == etag:
            return None, etag, False
        return self.get(key), tag, True

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
    workers = FETCH_WORKERS

    def __init__(self, bucket: str, aws_conn_id: str | None, endpoint_url: str | None):
        self.bucket, self.aws_conn_id, self.endpoint_url = bucket, aws_conn_id, endpoint_url
        self.where = f"s3://{bucket}" + (f" at {endpoint_url}" if endpoint_url else "")
        self._client = None

    @property
    def client(self):
        if self._client is None:
            from airflow.providers.amazon.aws.hooks.s3 import S3Hook
            from botocore.config import Config

            hook = S3Hook(aws_conn_id=self.aws_conn_id)
            # a connection per parallel GET: a smaller pool would log "connection pool is full" per file
            config = hook.config.merge(Config(max_pool_connections=max(self.workers, 10)))
            if self.endpoint_url:  # the connection's credentials and settings, this store's endpoint
                self._client = hook.get_session(region_name=hook.region_name).client(
                    "s3", endpoint_url=self.endpoint_url, config=config, verify=hook.verify)
            else:
                self._client = hook.get_client_type(region_name=hook.region_name, config=config)
        return self._client

    @staticmethod
    def _code(exc: Exception) -> str:
        return str(((getattr(exc, "response", None) or {}).get("Error") or {}).get("Code") or "")

    def _fault(self, exc: Exception, key: str) -> BundleFault:
        code = self._code(exc)
        detail = str(exc).splitlines()[0][:200] if str(exc) else ""
        return BundleFault(f"cannot read {key} from {self.where} ({code or type(exc).__name__}: {detail}); "
                           f"check the store and the connection '{self.aws_conn_id}'")

    def get(self, key: str) -> bytes | None:
        try:
            return self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except Exception as exc:  # noqa: BLE001 - turned into one clear line
            if self._code(exc) in ("NoSuchKey", "404"):
                return None
            raise self._fault(exc, key) from None

    def get_if_changed(self, key: str, etag: str | None) -> tuple[bytes | None, str | None, bool]:
        """(data, etag, changed): one GET with If-None-Match; a 304 has no body."""
        try:
            r = self.client.get_object(Bucket=self.bucket, Key=key, **({"IfNoneMatch": etag} if etag else {}))
            return r["Body"].read(), r.get("ETag"), True
        except Exception as exc:  # noqa: BLE001 - turned into one clear line
            code = self._code(exc)
            if code in ("304", "NotModified"):
                return None, etag, False
            if code in ("NoSuchKey", "404"):
                return None, None, True
            raise self._fault(exc, key) from None


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
    # how versions are read (bench/fleet's naive side turns these off: one GET per file, sequential,
    # and an unconditional pointer GET)
    use_archive = True
    fetch_workers = FETCH_WORKERS
    conditional_pointer = True

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
        self._reader.workers = self.fetch_workers
        self._live: str | None = None  # the version this (DAG processor) instance serves
        self._etag: tuple[str, str] | None = None  # (version, ETag) of the pointer last acted on

    def __repr__(self) -> str:
        return f"<PlatformDagBundle(name={self.name!r}, store={self._reader.where!r}, prefix={self.prefix!r}, " \
               f"version={self.version!r})>"

    # --- what Airflow calls -------------------------------------------------------------------------
    @property
    def path(self) -> Path:
        version = self.version or self._live or self._last_good()
        return self.versions_dir / version if version else self.base_dir / "no-version-yet"

    def get_current_version(self) -> "BundleVersion | str | None":
        version = self.version or self._live
        if not version:
            return None
        return BundleVersion(version=version) if BundleVersion is not None else version

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

    def _pointer_etag(self, serving: str | None) -> str | None:
        """The ETag of the pointer this machine last acted on, if it named the version served now."""
        if not self.conditional_pointer or serving is None:
            return None
        if self._etag is not None and self._etag[0] == serving:
            return self._etag[1]
        try:
            state = json.loads((self.base_dir / POINTER_STATE).read_text())
        except (OSError, ValueError):
            return None
        if isinstance(state, dict) and state.get("version") == serving and isinstance(state.get("etag"), str):
            return state["etag"]
        return None

    def _remember_pointer(self, version: str, etag: str | None) -> None:
        if not etag or not self.conditional_pointer or self._etag == (version, etag):
            return
        self._etag = (version, etag)
        self.base_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.base_dir / f".{POINTER_STATE}.{os.getpid()}"
        tmp.write_text(json.dumps({"version": version, "etag": etag}) + "\n")
        os.replace(tmp, self.base_dir / POINTER_STATE)

    def _follow_pointer(self, *, initial: bool) -> None:
        serving = self._live or self._last_good()
        key = pointer_key(self.prefix)
        wanted = None
        try:
            # one conditional GET: when the pointer is the one already acted on, 304 and no body
            raw, etag, changed = self._reader.get_if_changed(key, self._pointer_etag(serving))
            if not changed:
                wanted = serving
            else:
                if raw is None:
                    raise BundleFault(f"no {POINTER} under '{self.prefix}' in {self._reader.where}: nothing is "
                                      f"deployed (run make deploy)")
                try:
                    parsed = Pointer.parse(raw, self.prefix)
                    pointer, wanted = parsed.to_dict(), parsed.version
                except FormatError:
                    raise BundleFault(f"{key} in {self._reader.where} is not a pointer (no 'version'); run make "
                                      f"deploy or make rollback to rewrite it") from None
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
        self._remember_pointer(wanted, etag)  # only now: a version that failed to fetch is tried again
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
        """Make versions/<version>/ hold exactly that version's verified files (once per machine).

        fetch (the manifest, then the archive or the files, into memory) -> verify (exactly the
        manifest's files, each sha256, the manifest hashing to the version) -> activate (written into a
        temporary directory, compiled, one rename).
        Under the bundle's machine-wide lock: two processes wanting one version fetch it once."""
        final = self.versions_dir / version
        if final.is_dir():
            return final
        with self.lock():
            if final.is_dir():  # another process fetched it meanwhile
                return final
            t0 = time.perf_counter()
            self.versions_dir.mkdir(parents=True, exist_ok=True)
            self._remove_abandoned_staging()
            raw, manifest = self._read_manifest(version)
            self._verify_version(version, raw, manifest.to_dict(), statement)  # signature and image, before any file
            files, how = self._download(version, manifest)
            self._verify(version, manifest, files)
            self._activate(version, raw, files, final)
            log.info("bundle '%s': fetched %s (%d files %s, sha256 verified, %.2f s)", self.name, version,
                     len(manifest.files), how, time.perf_counter() - t0)
        return final

    def _remove_abandoned_staging(self) -> None:
        """Temporary directories left by a fetch that was killed: only the lock holder stages, so under the
        lock every one of them is abandoned."""
        for p in self.versions_dir.iterdir():
            if p.name.startswith(".b-") and p.is_dir():
                shutil.rmtree(p, ignore_errors=True)

    def _read_manifest(self, version: str) -> tuple[bytes, Manifest]:
        mkey = manifest_key(self.prefix, version)
        raw = self._reader.get(mkey)
        if raw is None:
            raise BundleFault(f"{version} has no {MANIFEST} in {self._reader.where} (an unfinished upload, or "
                              f"removed by make gc); deploy again or roll back to a complete version")
        try:
            manifest = Manifest.parse(raw, mkey)
        except FormatError:
            raise BundleFault(f"{mkey} is not a bundle manifest; deploy again") from None
        if manifest.content_version() != version:
            raise BundleFault(f"{mkey} does not hash to {version} (it was changed after the deploy); deploy again")
        for rel in manifest.files:
            if safe_rel(rel) is None:
                raise BundleFault(f"{version}: the manifest names an unsafe path {rel!r}; deploy again")
        return raw, manifest

    def _download(self, version: str, manifest: Manifest) -> tuple[dict[str, bytes], str]:
        """The version's files (path -> bytes, in memory: a bundle is DAG files and YAML): from its archive
        (one GET), or, for a version deployed before archives existed or whose archive does not match its
        manifest, one GET per file, `fetch_workers` at a time. Nothing is checked against the manifest's
        sha256 here: that is _verify's."""
        entry = manifest.extra.get("archive")
        if self.use_archive and isinstance(entry, dict) and entry.get("name") == ARCHIVE:
            data = self._reader.get(archive_key(self.prefix, version))
            try:
                if data is None:
                    raise ArchiveError(f"{ARCHIVE} is missing from the store")
                return read_archive(data, entry, set(manifest.files)), "from its archive"
            except ArchiveError as exc:
                log.warning("bundle '%s': %s: %s; reading its files one by one", self.name, version, exc)
        return self._download_files(version, sorted(manifest.files)), f"file by file, {self.fetch_workers} at a time"

    def _download_files(self, version: str, rels: list[str]) -> dict[str, bytes]:
        vprefix = version_prefix(self.prefix, version)
        out: dict[str, bytes] = {}

        def one(rel: str) -> None:
            data = self._reader.get(_join(vprefix, rel))
            if data is None:
                raise BundleFault(f"{version}: file {rel} is missing from the store; deploy again")
            out[rel] = data

        if self.fetch_workers <= 1:
            for rel in rels:
                one(rel)
            return out
        with ThreadPoolExecutor(max_workers=self.fetch_workers, thread_name_prefix="bundle-fetch") as pool:
            futures = [pool.submit(one, rel) for rel in rels]
            done, _ = wait(futures, return_when=FIRST_EXCEPTION)
            failed = next((f for f in futures if f in done and f.exception() is not None), None)
            if failed is not None:  # the first failure: stop, do not pile up one error per file
                for f in futures:
                    f.cancel()
                raise failed.exception()
        return out

    def _verify(self, version: str, manifest: Manifest, files: dict[str, bytes]) -> None:
        """Exactly the files the manifest names, each with its sha256 (the manifest was checked against
        the version's hash when it was read). The place for a signature check of the manifest."""
        extra = sorted(files.keys() - manifest.files.keys())
        if extra:
            raise BundleFault(f"{version}: {extra[0]} is not in the manifest")
        for rel, meta in manifest.files.items():
            if rel not in files:
                raise BundleFault(f"{version}: file {rel} was not fetched; deploy again")
            digest = hashlib.sha256(files[rel]).hexdigest()
            if digest != meta.sha256:
                raise BundleFault(f"{version}: file {rel} has sha256 {digest[:12]}..., the manifest says "
                                  f"{meta.sha256[:12]}... (changed in the store after the deploy); "
                                  f"deploy again or roll back")

    def _activate(self, version: str, raw_manifest: bytes, files: dict[str, bytes], final: Path) -> None:
        """Verified files into a temporary directory beside the final one, their bytecode, one rename."""
        tmp = Path(tempfile.mkdtemp(prefix=f".{version}.", dir=self.versions_dir))
        try:
            made: set[Path] = set()
            for rel, data in files.items():
                dest = tmp / rel  # checked by safe_rel when the manifest was read
                if dest.parent not in made:
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    made.add(dest.parent)
                dest.write_bytes(data)
            (tmp / MANIFEST).write_bytes(raw_manifest)
            compile_version(tmp)
            os.chmod(tmp, 0o755)
            os.rename(tmp, final)  # complete and verified, or not there at all
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

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
