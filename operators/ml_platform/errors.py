"""Errors raised at DAG-parse time: one line naming what is wrong and how to fix it."""


class PlatformConfigError(ValueError):
    """The flavor catalog or a job's parameters are invalid."""


class FlavorError(PlatformConfigError):
    """A flavor is unknown or not allowed in this environment."""


class JobSpecError(PlatformConfigError):
    """A job's image or parameters are invalid."""


class CatalogFileError(PlatformConfigError):
    """The flavor catalog file cannot be read: missing, too large, not UTF-8, not YAML."""
