"""Exceptions shared by every layer. Library code raises these; only `cli.py` turns them into messages."""
from __future__ import annotations

import errno
import os
import re


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


# Operating-system failures a user can mend (a path, a permission, a full or read-only disk): user errors.
USER_OS_ERRNOS = frozenset({errno.ENOENT, errno.EACCES, errno.EPERM, errno.EISDIR, errno.ENOTDIR, errno.ENOSPC,
                            errno.EROFS, errno.EDQUOT, errno.EEXIST, errno.EFBIG, errno.ENAMETOOLONG})
_HDF5_ERRNO = re.compile(r"errno = (\d+), error message = '([^']*)'")
_HDF5_NAME = re.compile(r"(?:name|filename) = '([^']*)'")


def os_error_cause(exc: BaseException) -> tuple[str, str | None] | None:
    """(cause, path or None) of an operating-system failure the user can mend, else None.

    Covers OSError with an errno (open, write, rename) and the errno that HDF5 (h5py) puts only in its message
    ("... errno = 28, error message = 'No space left on device' ...")."""
    if not isinstance(exc, OSError):
        return None
    if exc.errno in USER_OS_ERRNOS:
        return str(exc.strerror or os.strerror(exc.errno)), None if exc.filename is None else str(exc.filename)
    found = _HDF5_ERRNO.search(str(exc))
    if found and int(found.group(1)) in USER_OS_ERRNOS:
        name = _HDF5_NAME.search(str(exc))
        return found.group(2) or os.strerror(int(found.group(1))), name.group(1) if name else None
    return None
