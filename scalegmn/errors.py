"""Errors the user can act on: each renders as one line naming the file or key and the fix."""

from __future__ import annotations

from pathlib import Path


class ScaleGMNError(Exception):
    """Base class for errors shown to the user as a single line, without a traceback."""


class DataError(ScaleGMNError, ValueError):
    """A data file is missing, corrupt or malformed.

    ``str(err)`` is ``"<path>: <what is wrong>"`` so logs and the CLI show one useful line.
    """

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class ConfigError(ScaleGMNError, ValueError):
    """A configuration key is unknown, missing or has a wrong value.

    ``str(err)`` is ``"config key '<a.b.c>': <what is wrong and how to fix it>"``.
    """

    def __init__(self, key: str, problem: str) -> None:
        self.key = key
        self.problem = problem
        super().__init__(f"config key '{key}': {problem}")
