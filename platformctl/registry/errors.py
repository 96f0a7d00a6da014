from __future__ import annotations

from ..errors import PlatformError


class RegistryError(PlatformError):
    """The registry refused or failed an operation."""

    exit_code = 40


class RegistryAuthError(RegistryError):
    """Wrong or missing credentials: never retried."""

    exit_code = 41


class RegistryUnavailable(RegistryError):
    """Connection refused, timeouts, 5xx: retried with backoff, then this."""

    exit_code = 42


class ReleaseRefused(PlatformError):
    """A push, release or promotion the rules forbid (dirty tree, existing release, digest mismatch)."""

    exit_code = 43
