"""The registry's errors (defined in platformctl/errors.py with every exit code)."""

from ..errors import RegistryAuthError, RegistryError, RegistryUnavailable, ReleaseRefused  # noqa: F401
