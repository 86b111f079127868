"""The one error the data stage raises for bad input: it names the place and says what to do."""

from __future__ import annotations


class DataError(ValueError):
    """Input that cannot be used. The message names the file and line (or column) and a fix."""

    def __init__(self, where: str, problem: str, hint: str = "") -> None:
        self.where = where
        self.problem = problem
        self.hint = hint
        msg = f"{where}: {problem}"
        if hint:
            msg += f" ({hint})"
        super().__init__(msg)
