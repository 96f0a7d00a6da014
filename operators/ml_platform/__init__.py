"""In-image code of the ML platform: flavor catalog and the generic job operator."""

__version__ = "0.1.0"
