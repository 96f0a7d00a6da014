"""Field validators shared by the configuration, environment and pipeline models."""

from __future__ import annotations

import re

from pydantic import field_validator


def matching(field: str, pattern: re.Pattern[str], message: str, *, optional: bool = False):
    """A validator of `field` (put it in the model's body: `_name = matching(...)`): the value matches `pattern`,
    else a ValueError of `message` with the value in place of `{}`; None passes when `optional`."""

    def check(cls, v):
        if v is None and optional:
            return v
        if not pattern.match(v):
            raise ValueError(message.format(v))
        return v

    return field_validator(field)(check)
