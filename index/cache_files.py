"""Cache files a process can rebuild: written whole or not at all, and never a reason to fail."""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from pathlib import Path

log = logging.getLogger(__name__)


def write_atomically(path: Path, data: bytes, what: str) -> bool:
    """Write `data` to `path` through a temporary file beside it renamed into place, so a reader
    never sees half a file; a read-only or full disk only costs time (one warning naming
    `what`, no file left behind). Whether the file was written. Temporary files of writes
    killed before their rename are removed first."""
    temporary: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        for stale in path.parent.glob(f".{path.name}.*"):
            with contextlib.suppress(OSError):
                stale.unlink()
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        with os.fdopen(handle, "wb") as file:
            file.write(data)
        os.replace(temporary, path)
        return True
    except OSError as error:
        log.warning("cannot cache %s in %s: %s", what, path.parent, error)
        if temporary is not None:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
        return False
