"""Exceptions shared by every layer. Library code raises these; only `cli.py` turns them into messages."""
from __future__ import annotations


class UserError(Exception):
    """A problem the user can fix (bad input, wrong option, incompatible file). Printed without a traceback."""


class InputError(UserError):
    """Malformed or inconsistent input file. The message names the file and, where there is one, the line."""

    def __init__(self, message: str, path: object = None, line: int | None = None):
        where = ""
        if path is not None:
            where = f"{path}" + (f":{line}" if line is not None else "") + ": "
        super().__init__(where + message)
        self.path = path
        self.line = line
