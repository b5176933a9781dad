"""Checks shared by the parameter dataclasses of `strategies` and `risk`.

The dataclasses validate themselves in `__post_init__`, so a bad value is caught wherever they are
built: by the config loader (which turns a `ParamError` into `section.key: message`) or by a test.
"""

from __future__ import annotations

import math


class ParamError(ValueError):
    """A parameter value that breaks a rule; `key` names the offending field."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key
        self.message = message


def require_positive(key: str, value: float) -> None:
    if not (math.isfinite(value) and value > 0):
        raise ParamError(key, f"must be > 0, got {value}")


def require_non_negative(key: str, value: float) -> None:
    if not (math.isfinite(value) and value >= 0):
        raise ParamError(key, f"must be >= 0, got {value}")


def require_fraction(key: str, value: float, *, allow_zero: bool = True) -> None:
    """A share of something: in [0, 1], or (0, 1] when zero makes no sense."""
    low_ok = value >= 0 if allow_zero else value > 0
    if not (math.isfinite(value) and low_ok and value <= 1):
        bound = "[0, 1]" if allow_zero else "(0, 1]"
        raise ParamError(key, f"must be in {bound}, got {value}")
