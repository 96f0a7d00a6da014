"""Pipeline problems and errors (defined in platformctl/errors.py with every exit code)."""

from ..errors import PipelineError, Problem, RenderCheckError  # noqa: F401
