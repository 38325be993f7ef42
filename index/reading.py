"""Reading an article file's bytes safely: the one home of the containment rule.

A file is read only if it resolves inside the folder it was found under (or is the file the
user named), only if it is a regular file, and never beyond the size limit. Checks are made on
the opened descriptor too, so a file swapped for a symlink or a FIFO between the check and the
open cannot get through, and a FIFO or device never blocks the reader or fills its memory.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

_MEGABYTE = 1024 * 1024
OUTSIDE_ROOT = "symlink points outside the articles folder"
_READ_CHUNK = 1024 * 1024
_OPEN_FLAGS = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0) | os.O_CLOEXEC
_KINDS = (
    (stat.S_ISFIFO, "FIFO"),
    (stat.S_ISSOCK, "socket"),
    (stat.S_ISCHR, "character device"),
    (stat.S_ISBLK, "block device"),
    (stat.S_ISDIR, "folder"),
)


class UnreadableFileError(OSError):
    """A file that is not read; the message is the reason a user is shown."""


def contains(root: Path, resolved: str) -> bool:
    """Whether a resolved path is `root` (itself resolved) or lies inside it."""
    root_text = str(root)
    return resolved == root_text or resolved.startswith(root_text.rstrip(os.sep) + os.sep)


def read_contained(path: Path, root: Path, limit: int) -> bytes:
    """The bytes of `path` if it resolves inside the resolved `root` and is a regular file of at
    most `limit` bytes; otherwise UnreadableFileError says why. Symlinks are never read when
    they lead out of `root`, and their target is not opened."""
    resolved = os.path.realpath(path)
    if not contains(root, resolved):
        raise UnreadableFileError(OUTSIDE_ROOT)
    try:
        _check_regular(os.stat(resolved), limit)
        descriptor = os.open(resolved, _OPEN_FLAGS)
    except UnreadableFileError:
        raise
    except OSError as error:
        raise UnreadableFileError(f"cannot read: {error.strerror or error}") from error
    try:
        _check_regular(os.fstat(descriptor), limit)
        opened = _opened_path(descriptor)
        if opened is not None and not contains(root, opened):
            raise UnreadableFileError(OUTSIDE_ROOT)
        return _read_at_most(descriptor, limit)
    except UnreadableFileError:
        raise
    except OSError as error:
        raise UnreadableFileError(f"cannot read: {error.strerror or error}") from error
    finally:
        os.close(descriptor)


def _check_regular(status: os.stat_result, limit: int) -> None:
    """Refuse anything but a regular file, and a regular file its size says is too large."""
    if not stat.S_ISREG(status.st_mode):
        kind = next((name for test, name in _KINDS if test(status.st_mode)), "special file")
        raise UnreadableFileError(f"not a regular file ({kind})")
    if status.st_size > limit:
        raise UnreadableFileError(
            f"file too large: {status.st_size / _MEGABYTE:.1f} MB (limit {_megabytes(limit)})"
        )


def _opened_path(descriptor: int) -> str | None:
    """Where an open descriptor really points (Linux), or None where the OS cannot say."""
    try:
        return os.readlink(f"/proc/self/fd/{descriptor}")
    except OSError:
        return None


def _read_at_most(descriptor: int, limit: int) -> bytes:
    """Read to the end, but never more than `limit` + 1 bytes, whatever `stat` claimed."""
    parts = []
    remaining = limit + 1
    while remaining > 0:
        part = os.read(descriptor, min(_READ_CHUNK, remaining))
        if not part:
            break
        parts.append(part)
        remaining -= len(part)
    if remaining <= 0:
        raise UnreadableFileError(f"file too large: over the limit of {_megabytes(limit)}")
    return b"".join(parts)


def _megabytes(size: int) -> str:
    return f"{size / _MEGABYTE:g} MB"
