"""Atomic file output: write to a temporary file beside the target, fsync, then rename.

A crash or a raised exception leaves either the old file or no file, never a half-written one.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from piddm.errors import PiddmError


def check_output_path(path: str | os.PathLike[str], overwrite: bool = False) -> Path:
    """Validate an output path before any work starts; returns it as a :class:`Path`.

    Raises :class:`PiddmError` if the file exists (unless ``overwrite``), if the path is a
    directory, or if its parent directory is missing or not writable.
    """
    out = Path(path)
    if out.is_dir():
        raise PiddmError(f"output path {out} is a directory")
    if out.exists() and not overwrite:
        raise PiddmError(f"output file {out} exists (pass --overwrite to replace it)")
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir():
        raise PiddmError(f"cannot write {out}: directory {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise PiddmError(f"cannot write {out}: directory {parent} is not writable")
    return out


def fsync_path(path: str | os.PathLike[str]) -> None:
    """Flush a file's contents to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def current_umask() -> int:
    """The process's umask (reading it means setting it, so it is set straight back)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path; on success fsync it and rename it onto ``path``.

    On any exception (including ``KeyboardInterrupt``) the temporary file is removed. The file
    gets the permissions of a newly created file (``0o666`` less the umask) whatever the writer
    used (safetensors writes ``0o600``, which hides checkpoints from the rest of a group).
    """
    target = Path(path)
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    try:
        yield tmp
        fsync_path(tmp)
        os.chmod(tmp, 0o666 & ~current_umask())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    with contextlib.suppress(OSError):
        fsync_path(target.parent)
