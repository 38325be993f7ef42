"""Cache files a process can rebuild: written whole or not at all, and never a reason to fail."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

log = logging.getLogger(__name__)

# A temporary file or folder beside a cache entry untouched this long is a killed write's, not
# one another process is still writing (the largest, the ONNX graph, takes seconds).
_STALE_SECONDS = 600


def remove_stale_temporaries(path: Path) -> None:
    """Delete what writes of `path` killed before their rename left beside it (`.{name}.*`)."""
    cutoff = time.time() - _STALE_SECONDS
    with contextlib.suppress(OSError):
        for stale in path.parent.glob(f".{path.name}.*"):
            with contextlib.suppress(OSError):
                if stale.lstat().st_mtime >= cutoff:
                    continue
                if stale.is_dir() and not stale.is_symlink():
                    shutil.rmtree(stale, ignore_errors=True)
                else:
                    stale.unlink()


def write_atomically(path: Path, data: bytes, what: str) -> bool:
    """Write `data` to `path` through a temporary file beside it renamed into place, so a reader
    never sees half a file; a read-only or full disk only costs time (one warning naming
    `what`, no file left behind). Whether the file was written. Temporary files of writes
    killed before their rename are removed first (`remove_stale_temporaries`)."""
    temporary: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(path)
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
