"""Write a file atomically: a new temporary file beside the target, renamed over it when complete.

A reader never sees a half-written file, and a failed write (disk full, no permission, an
exception while writing) leaves the previous file exactly as it was.  New files get the
permissions ``0o666 & ~umask``, as any file the user creates.
"""
from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path
from typing import IO, Iterator, Optional, Union

from .errors import InputError

__all__ = ["atomic_output"]


@contextlib.contextmanager
def atomic_output(path: Union[str, Path], *, what: str = "file", text: bool = False,
                  encoding: str = "utf-8", newline: Optional[str] = "\n", fsync: bool = False) -> Iterator[IO]:
    """Open a temporary file beside ``path``; on a clean exit rename it over ``path``.

    Parameters
    ----------
    path : str or Path
        The file to write; its folder is created when missing.
    what : str
        How messages name the file (``"report file"``, ``"figure"``).
    text : bool
        Open in text mode (``encoding``, ``newline``) instead of binary.
    encoding, newline : str
        Text mode only.
    fsync : bool
        Flush the data to disk before the rename (for files that mark work as done).

    Yields
    ------
    file object
        The open temporary file.

    Raises
    ------
    InputError
        The folder or the file cannot be written (the message names ``path`` and says the
        previous file, if any, is unchanged).  Any other exception raised inside the block
        propagates after the temporary file is removed.
    """
    path = Path(path)
    tmp = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # mode 0o666: the umask decides the permissions, as for any new file
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)  # novm (int flags)
        fd = os.open(str(tmp), flags, 0o666)
        fh = os.fdopen(fd, "w", encoding=encoding, newline=newline) if text else os.fdopen(fd, "wb")
        with fh:
            yield fh
            if fsync:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        raise InputError(f"{what} {path}: could not write it ({exc.strerror or exc}); the previous file, "
                         f"if any, is unchanged") from None
    finally:
        if os.path.lexists(tmp):
            os.unlink(tmp)
