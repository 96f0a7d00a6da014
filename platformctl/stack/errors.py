"""The local stack's errors (defined in platformctl/errors.py with every exit code)."""

from ..errors import ApiTimeout, PortTaken, RunFailed, StackError  # noqa: F401
