"""Every failure the build-and-ship side reports, and its exit code: the one place both are defined.

A message says what is wrong and where; the hint says what to do. The CLI (cli.py) turns any of these
into one line on stderr and exits with the class's code. Modules raise them by importing from here
(some also re-export the ones they raise, for their callers' convenience).

Exit codes (0 success; 2 is also argparse's usage error):

     1  PlatformError        anything not listed below
     2  ConfigError          platform.yaml, an environment or an override is invalid
     3  LockInputError       a requirements/*.in asks for something forbidden
     4  ResolutionError      no consistent set of pins
     5  StaleLockError       a lock is out of date or edited by hand
     6  ToolMissingError     uv, pip-compile, docker, skopeo ... missing
     7  EngineError          the container engine is unreachable or failed
     8  BuildError           the image build failed
     9  ImageTestError       the built image failed its checks
    11  PipelineError        pipelines/*.yaml invalid (every problem listed first)
    12  RenderCheckError     dags/ differs from what make render writes
    13  InputFileError       a user-edited file cannot be read (size, encoding, not YAML, not a file)
    14  UnsafePathError      a configured path leaves the repository
    15  MachineFileError     .platform/local.yaml cannot be read
    16  HostSetupError       an install or the engine start failed while preparing this host
    17  StudioError          the studio's front-end bundle is missing or stale
    18  NotReproducible      make verify-reproducible: the rebuild is another image (first differing layer, files)
    19  ReproducibleRefused  make verify-reproducible cannot say: Docker engine, dirty tree, nothing to compare with
    20  StoreError           the bundle store refused or failed an operation
    21  RollbackError        no version to roll back to / not a known version
    22  PolicyError          deploy refused: a flavor or image the environment forbids,
        ImageMissing           or no image its config could name
    23  ConflictError        another writer won: a conditional write lost (store)
        DeployConflict         or another deploy/rollback switched the pointer first
    24  AirflowAPIError      the managed instance's API refused or failed
    25  InstanceSettingsError  pools/connections: a missing connection refuses the deploy, or the API refused a change
    26  InstanceAuthError    the instance's API answered 401/403 to a settings call (set AIRFLOW_API_TOKEN)
    27  InstanceUnreachable  the instance's API could not be reached for its settings (nothing applied)
    28  SigningKeyError      no signing key where one is required, a key that is not one, a key
                           the environment does not allow (before upload), a malformed allowed key
    29  BundleSignatureRefused  a stored version's signature does not verify (rollback, status)
    30  StackError           the local stack cannot be started, reached or stopped
        ApiTimeout, PortTaken  (kinds of StackError)
    31  RunFailed            a pipeline run on the local stack did not succeed
    32  ExecutorError        an environment's executor is unknown, or its provider is not in the locks
    40  RegistryError        the registry refused or failed an operation
    41  RegistryAuthError    wrong or missing credentials (never retried)
    42  RegistryUnavailable  connection refused, timeouts, 5xx, after retries
    43  ReleaseRefused       a push, release or promotion the rules forbid
    44  SigningError         no signing key, a wrong passphrase, gpg/skopeo could not sign
    45  SignatureRefused     an image digest without a valid signature from an allowed key
    46  SbomError            the SBOM/provenance cannot be made, attached, or does not match the image
    47  AuditFailed          make audit: a vulnerability at/above the policy's severity, an expired allowlist entry
    48  AuditError           make audit could not run: bad policy, OSV service down or answering garbage
    50  PLAN_CHANGES         make plan: something would change (an answer, not a failure)
    51  PlanRefused          make plan: deploy would refuse
    52  StatusIncomplete     make status / diff could not read some environment
    53  ImageCannotServe     deploy refused: the environment's image cannot serve the bundle
    54  LedgerError          a deploy ledger entry cannot be written or is not there
    60  UpgradeInputError    make upgrade-test: a version/Python/provider the target cannot take (#36)
    61  UpgradeBlocked       make upgrade-test: the rehearsal's verdict is blocked
    62  UpgradeNeedsChanges  make upgrade-test: the verdict is needs changes (listed in the report)
    63  UpgradeApplyRefused  make upgrade-test APPLY=1: nothing written (verdict not ready)
   130  INTERRUPTED          Ctrl-C
"""

from __future__ import annotations

from dataclasses import dataclass


INTERRUPTED = 130  # Ctrl-C, as a shell reports SIGINT


class PlatformError(Exception):
    """Exit code 1: anything no subclass names. A subclass gives its code in its header,
    `class X(PlatformError, exit_code=N)`, as the table above lists it; one without inherits its parent's."""

    exit_code: int = 1

    def __init_subclass__(cls, exit_code: int | None = None, **kwargs):
        super().__init_subclass__(**kwargs)
        if exit_code is not None:
            cls.exit_code = exit_code

    def __init__(self, message: str, hint: str | None = None, *, where: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.where = where

    def one_line(self) -> str:
        parts = []
        if self.where:
            parts.append(f"{self.where}: ")
        parts.append(self.message)
        if self.hint:
            parts.append(f" ({self.hint})")
        return "".join(parts)

    def __str__(self) -> str:  # pragma: no cover - convenience
        return self.one_line()


# ------------------------------------------------------------------ configuration, inputs, this host
class ConfigError(PlatformError, exit_code=2):
    """platform.yaml (or an override) is invalid."""


class InputFileError(ConfigError, exit_code=13):
    """A file the user edits cannot be read: too large, not UTF-8, not YAML, not a regular file."""


class UnsafePathError(ConfigError, exit_code=14):
    """A path from configuration leaves the repository (or is not a plain relative path)."""


class MachineFileError(PlatformError, exit_code=15):
    """The per-machine settings file (.platform/local.yaml) cannot be read."""


class HostSetupError(PlatformError, exit_code=16):
    """This host cannot be set up for the build (an install or the engine start failed)."""


class ToolMissingError(PlatformError, exit_code=6):
    """A required external tool (uv, pip-compile, docker, ...) is not available."""


# ------------------------------------------------------------------ locks
class LockInputError(PlatformError, exit_code=3):
    """A requirements/*.in file asks for something the platform forbids."""


class ResolutionError(PlatformError, exit_code=4):
    """The resolver could not find a consistent set of pins."""


class StaleLockError(PlatformError, exit_code=5):
    """A lock file is out of date with its inputs, or was edited by hand."""


# ------------------------------------------------------------------ image
class EngineError(PlatformError, exit_code=7):
    """The container engine is unreachable or failed."""


class BuildError(PlatformError, exit_code=8):
    """The image build failed."""


class ImageTestError(PlatformError, exit_code=9):
    """The built image failed its tests."""


# ------------------------------------------------------------------ pipelines and the studio
@dataclass(frozen=True)
class Problem:
    """One problem in one pipeline file: where (file, line, field) and what."""

    file: str
    line: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.field + ' ' if self.field else ''}{self.message}"


class PipelineError(PlatformError, exit_code=11):
    """One or more pipelines are invalid; every problem is listed, one per line."""

    def __init__(self, problems: list[Problem]):
        files = sorted({p.file for p in problems})
        super().__init__(f"{len(problems)} problem(s) in {len(files)} pipeline file(s): {', '.join(files)}",
                         "fix each line above, then run make render")
        self.problems = problems


class RenderCheckError(PlatformError, exit_code=12):
    """dags/ differs from what make render writes."""


class StudioError(PlatformError, exit_code=17):
    """The studio's front-end bundle is missing or stale."""


# ------------------------------------------------------------------ delivery
class StoreError(PlatformError, exit_code=20):
    """The bundle store refused or failed an operation."""


class ConflictError(StoreError, exit_code=23):
    """A conditional write lost: the object changed (or appeared) since it was read."""


class RollbackError(PlatformError, exit_code=21):
    """No version to roll back to, or not a known version."""


class PolicyError(PlatformError, exit_code=22):
    """Deploy refused: a flavor or image the environment forbids."""


class ImageMissing(PolicyError):
    """A deploy with no built or promoted image: its config would name none."""


class DeployConflict(PlatformError, exit_code=23):
    """Another deploy or rollback switched the pointer while this one ran."""


class AirflowAPIError(PlatformError, exit_code=24):
    """The managed instance's API refused or failed."""


# Exit codes of `make plan` (like `terraform plan -detailed-exitcode`): 0 = nothing would change,
# PLAN_CHANGES = deploy/promote would change something (an answer, not a failure), PlanRefused = deploy
# would refuse. CI gates on them.
PLAN_CHANGES = 50


class PlanRefused(PlatformError, exit_code=51):
    """The plan found what deploy would refuse (a forbidden flavor or image): nothing can go out."""


class StatusIncomplete(PlatformError, exit_code=52):
    """`make status` / `make diff` could not read some environment's registry or bundle store."""


# ------------------------------------------------------------------ local stack
class StackError(PlatformError, exit_code=30):
    """The local stack cannot be started, reached or stopped."""


class ApiTimeout(StackError):
    """The API did not answer in time (a busy machine); a follower may poll again."""


class PortTaken(StackError):
    """The stack's port is in use."""


class RunFailed(PlatformError, exit_code=31):
    """A pipeline run ended in a state other than success."""


# ------------------------------------------------------------------ registry
class RegistryError(PlatformError, exit_code=40):
    """The registry refused or failed an operation."""


class RegistryAuthError(RegistryError, exit_code=41):
    """Wrong or missing credentials: never retried."""


class RegistryUnavailable(RegistryError, exit_code=42):
    """Connection refused, timeouts, 5xx: retried with backoff, then this."""


class ReleaseRefused(PlatformError, exit_code=43):
    """A push, release or promotion the rules forbid (dirty tree, existing release, digest mismatch)."""


class ExecutorError(ConfigError, exit_code=32):
    """An environment's executor is not one Airflow has, or its provider/client is not in the image's locks."""


# ------------------------------------------------------------------ instance settings (#35)
class InstanceSettingsError(PlatformError, exit_code=25):
    """The instance's pools or connections differ in a way deploy refuses, or its API refused a change."""


class InstanceAuthError(InstanceSettingsError, exit_code=26):
    """The instance's API answered 401/403 to a settings call (the hint names the setting to fix)."""


class InstanceUnreachable(InstanceSettingsError, exit_code=27):
    """The instance's API could not be reached while reading or applying settings (nothing applied after)."""

# ------------------------------------------------------------------ upgrade rehearsal (#36)
class UpgradeInputError(PlatformError, exit_code=60):
    """make upgrade-test: the target version, Python or a provider cannot be rehearsed (named, with what can)."""


class UpgradeBlocked(PlatformError, exit_code=61):
    """make upgrade-test: a step the verdict needs failed (relock, build, image checks, migration): blocked."""


class UpgradeNeedsChanges(PlatformError, exit_code=62):
    """make upgrade-test: the candidate works but the project needs changes first (each file:line in the report)."""


class UpgradeApplyRefused(PlatformError, exit_code=63):
    """make upgrade-test APPLY=1 with a verdict other than ready: the working tree was not touched."""

class NotReproducible(PlatformError, exit_code=18):
    """The same commit built again with no cache gave another image."""


class ReproducibleRefused(PlatformError, exit_code=19):
    """verify-reproducible cannot answer for this tree or engine (said before anything is built)."""
# ------------------------------------------------------------------ supply chain (issue 37)
class SigningError(PlatformError, exit_code=44):
    """No signing key configured, a wrong passphrase, or gpg/skopeo could not sign."""


class SignatureRefused(PlatformError, exit_code=45):
    """An image digest without a valid signature from a key the environment allows (checked by skopeo)."""


class SbomError(PlatformError, exit_code=46):
    """The SBOM or provenance cannot be made or attached, or an attached one does not match the image."""


class AuditFailed(PlatformError, exit_code=47):
    """make audit found a vulnerability at or above the policy's severity, or an expired allowlist entry."""


class AuditError(PlatformError, exit_code=48):
    """make audit could not run: an invalid policy, the OSV service down or answering garbage."""



# ------------------------------------------------------------------ bundle trust (issue 38)
class SigningKeyError(PlatformError, exit_code=28):
    """No signing key where one is required, or a key that does not fit the environment's allowed keys."""


class BundleSignatureRefused(PlatformError, exit_code=29):
    """A stored version's signature does not verify against the environment's allowed keys."""


class ImageCannotServe(PlatformError, exit_code=53):
    """The environment's image cannot serve the bundle (pipeline format or ml_platform version)."""


class LedgerError(PlatformError, exit_code=54):
    """A deploy ledger entry cannot be written (nothing is switched), read, or found."""
