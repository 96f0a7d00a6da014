"""Typed failures. Each kind has its own exit code; the CLI prints one line.

A message says what is wrong and where; the hint says what to do.
"""

from __future__ import annotations


class PlatformError(Exception):
    exit_code = 1
    kind = "error"

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


class ConfigError(PlatformError):
    """platform.yaml (or an override) is invalid."""

    exit_code = 2
    kind = "config"


class LockInputError(PlatformError):
    """A requirements/*.in file asks for something the platform forbids."""

    exit_code = 3
    kind = "lock-input"


class ResolutionError(PlatformError):
    """The resolver could not find a consistent set of pins."""

    exit_code = 4
    kind = "resolution"


class StaleLockError(PlatformError):
    """A lock file is out of date with its inputs, or was edited by hand."""

    exit_code = 5
    kind = "stale-lock"


class ToolMissingError(PlatformError):
    """A required external tool (uv, pip-compile, docker, ...) is not available."""

    exit_code = 6
    kind = "tool-missing"


class EngineError(PlatformError):
    """The container engine is unreachable or failed."""

    exit_code = 7
    kind = "engine"


class BuildError(PlatformError):
    """The image build failed."""

    exit_code = 8
    kind = "build"


class ImageTestError(PlatformError):
    """The built image failed its tests."""

    exit_code = 9
    kind = "image-test"


class InputFileError(ConfigError):
    """A file the user edits cannot be read: too large, not UTF-8, not YAML, not a regular file."""

    exit_code = 13
    kind = "input-file"


class UnsafePathError(ConfigError):
    """A path from configuration leaves the repository (or is not a plain relative path)."""

    exit_code = 14
    kind = "unsafe-path"


class MachineFileError(PlatformError):
    """The per-machine settings file (.platform/local.yaml) cannot be read."""

    exit_code = 15
    kind = "machine-file"


class HostSetupError(PlatformError):
    """This host cannot be set up for the build (an install or the engine start failed)."""

    exit_code = 16
    kind = "host-setup"

# Exit codes of `make plan` (like `terraform plan -detailed-exitcode`): 0 = nothing would change,
# PLAN_CHANGES = deploy/promote would change something (an answer, not a failure), PlanRefused = deploy
# would refuse. CI gates on them.
PLAN_CHANGES = 50


class PlanRefused(PlatformError):
    """The plan found what deploy would refuse (a forbidden flavor or image): nothing can go out."""

    exit_code = 51
    kind = "plan-refused"


class StatusIncomplete(PlatformError):
    """`make status` / `make diff` could not read some environment's registry or bundle store."""

    exit_code = 52
    kind = "status-incomplete"
