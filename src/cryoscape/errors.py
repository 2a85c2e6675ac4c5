"""User-facing errors.

An :class:`InputError` means the user's input is wrong (a missing file, a truncated stack, a
star file without a needed column). The CLI prints it as one line and exits non-zero; any other
exception is a bug in cryoscape and keeps its traceback.
"""

from __future__ import annotations

from os import PathLike


class InputError(Exception):
    """A problem with user input, reported as ``<file>: <problem>`` without a traceback."""

    def __init__(self, problem: str, path: str | PathLike | None = None) -> None:
        self.problem = problem
        self.path = None if path is None else str(path)
        super().__init__(f"{self.path}: {problem}" if self.path else problem)
