"""Where the index lives: an embedded Chroma under the data directory, or a Chroma server.

Both are reached through one `ChromaConnection`, which opens the client lazily (so a server
that is down at start only fails the requests made while it is down) and turns the faults an
operator can fix (server unreachable, read-only or full disk, damaged files) into one
`StoreUnavailableError` line that says what to do.
"""

from __future__ import annotations

import errno
import os
import shutil
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import chromadb
import httpx
from chromadb.api import ClientAPI
from chromadb.api.client import SharedSystemClient
from chromadb.errors import ChromaAuthError, InternalError
from pydantic import SecretStr

from index.errors import ConfigError
from index.store_errors import StoreDamagedError, StoreUnavailableError

_TOKEN_PROVIDER = "chromadb.auth.token_authn.TokenAuthClientProvider"
CHROMA_SUBDIR = "chroma"


@dataclass(frozen=True)
class ChromaServer:
    """A Chroma server reached over HTTP(S), with an optional token for its auth header."""

    url: str
    database: str
    token: SecretStr | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError("CITEBOT_CHROMA_URL must look like http://host:port or https://host")
        if parts.username or parts.password:
            raise ConfigError(
                "CITEBOT_CHROMA_URL must not hold credentials: set CITEBOT_CHROMA_TOKEN instead"
            )
        if parts.path not in ("", "/") or parts.query:
            raise ConfigError("CITEBOT_CHROMA_URL must be the server's root, without a path")

    @property
    def address(self) -> str:
        """The URL as it may be shown and logged (it never holds credentials)."""
        return self.url.rstrip("/")

    def client(self) -> ClientAPI:
        """A new HTTP client; raises `StoreUnavailableError` when the server cannot be reached."""
        parts = urlsplit(self.url)
        https = parts.scheme == "https"
        settings = chromadb.Settings(anonymized_telemetry=False)
        if self.token is not None:
            settings = chromadb.Settings(
                anonymized_telemetry=False,
                chroma_client_auth_provider=_TOKEN_PROVIDER,
                chroma_client_auth_credentials=self.token.get_secret_value(),
            )
        return chromadb.HttpClient(
            host=parts.hostname or "",
            port=parts.port or (443 if https else 80),
            ssl=https,
            settings=settings,
            database=self.database,
        )


class ChromaConnection:
    """The Chroma client of one index location, opened on first use and reopened on demand.

    `data_dir` always holds what is local to this host (the BM25 cache, the embedded store's
    file lock); in server mode the index itself is on the server.
    """

    def __init__(self, data_dir: Path, server: ChromaServer | None, lease_seconds: float) -> None:
        self.data_dir = data_dir
        self.server = server
        self.lease_seconds = lease_seconds
        self._client: ClientAPI | None = None
        self._opening = threading.Lock()
        # The embedded database file the client opened (device, inode), and whether one of its
        # calls failed on a fault of the files since: either way the client is reopened.
        self._opened: tuple[int, int] | None = None
        self._faulted = False
        # How many clients were opened: collections fetched from an older one no longer work.
        self.openings = 0
        # The generation of each collection this connection last read or published.
        self.seen_generations: dict[str, int] = {}

    @property
    def embedded(self) -> bool:
        return self.server is None

    @property
    def is_open(self) -> bool:
        return self._client is not None

    @property
    def chroma_dir(self) -> Path:
        """Where the embedded store keeps its files."""
        return self.data_dir / CHROMA_SUBDIR

    @property
    def where(self) -> str:
        """The index's location, for messages: the server's address or the embedded folder."""
        return (
            f"the Chroma server at {self.server.address}" if self.server else str(self.chroma_dir)
        )

    @property
    def database(self) -> Path:
        """The embedded store's SQLite file."""
        return self.chroma_dir / "chroma.sqlite3"

    @property
    def client(self) -> ClientAPI:
        """The client, opened now if it is not yet (or no longer) open.

        An embedded client is reopened once a call failed on a fault of its files (it may be
        fixed by now), and once its database file was removed or replaced (a rebuild moved
        damaged files aside, a folder was restored): its open handle would go on reading the
        old file. A store that vanished is not created again here, so that it can be restored;
        `citebot index` builds a new one (`allow_new_store`).
        """
        with self._opening:
            if (
                self._client is not None
                and self.embedded
                and (self._faulted or _identity(self.database) != self._opened)
            ):
                self._forget()
            if self._client is None:
                if self._opened is not None and _identity(self.database) is None:
                    raise gone(self.chroma_dir)
                with self.guard():
                    self._client = self._open()
                self.openings += 1
                self._opened = _identity(self.database) if self.embedded else None
                self._faulted = False
            return self._client

    def allow_new_store(self) -> None:
        """Let the next open create the embedded store where one vanished (for a writer)."""
        with self._opening:
            if self.embedded and _identity(self.database) is None:
                self._forget()
                self._opened = None

    def _open(self) -> ClientAPI:
        if self.server is not None:
            return self.server.client()
        self.chroma_dir.mkdir(parents=True, exist_ok=True)
        try:
            return chromadb.PersistentClient(
                path=str(self.chroma_dir), settings=chromadb.Settings(anonymized_telemetry=False)
            )
        except BaseException:
            # Chroma caches the system per path even when it failed to start, and would hand
            # the broken one to every later open (long after the files were fixed).
            SharedSystemClient.clear_system_cache()
            raise

    def reopen(self) -> None:
        """Forget the client, so the next use opens a fresh one.

        An embedded client keeps vector indexes in memory that do not see another process's
        writes, so a reader reopens after another process published a new generation.
        """
        with self._opening:
            self._forget()
            self._opened = None

    def _forget(self) -> None:
        """Drop the client (an embedded one's cached system too: it holds the files open)."""
        if self.embedded:
            SharedSystemClient.clear_system_cache()
        self._client = None

    @contextmanager
    def guard(self) -> Iterator[None]:
        """Turn the faults an operator can fix into one `StoreUnavailableError` line."""
        try:
            yield
        except (StoreUnavailableError, KeyboardInterrupt, SystemExit, GeneratorExit):
            raise
        except BaseException as error:  # Chroma's Rust panics are BaseExceptions
            problem = self._fault(error)
            if problem is None:
                raise
            if self.server is not None:
                self._client = None  # reconnect on the next request
            else:
                self._faulted = True  # reopen the embedded client on the next request
            raise problem from None

    def _fault(self, error: BaseException) -> StoreUnavailableError | None:
        """What to tell the operator about `error`, or None when it is a bug."""
        if self.server is None:
            return disk_fault(error, self.chroma_dir)
        if isinstance(error, httpx.TransportError) or (
            isinstance(error, ValueError) and "Could not connect" in str(error)
        ):
            problem = "cannot be reached; check that it is running (Citebot tries again)"
        elif isinstance(error, ChromaAuthError):
            problem = "refused CITEBOT_CHROMA_TOKEN"
        elif isinstance(error, InternalError | httpx.HTTPStatusError):
            problem = f"failed ({_first_line(error)})"
        else:
            return None
        return StoreUnavailableError(f"the index is unavailable: {self.where} {problem}")


_DISK_FULL = ("disk is full", "no space", "error in compaction")
# Under this much free space an unexplained failure of the store is put down to a full disk.
_LOW_DISK_BYTES = 64 * 2**20
_READ_ONLY = ("readonly database", "read-only", "permission denied")
_DAMAGED = (
    "malformed",
    "not a database",
    "database disk image",
    "panicked",
    "corrupt",
    "failed to pull logs",
)


def disk_fault(error: BaseException, folder: Path) -> StoreUnavailableError | None:
    """What to tell the operator when the embedded store in `folder` fails, or None for a bug."""
    problem = folder_fault(error, folder)
    if problem is not None:
        return problem
    where = f"the index is unavailable: {folder}"
    if any(mark in str(error).casefold() for mark in _DAMAGED) or isinstance(
        error, sqlite3.DatabaseError
    ):
        return StoreDamagedError(
            f"{where} is damaged; rebuild it with `citebot index --rebuild` "
            "(the damaged files are moved aside)"
        )
    if isinstance(error, InternalError | OSError) and not isinstance(error, FileNotFoundError):
        if (free := _free_bytes(folder)) is not None and free < _LOW_DISK_BYTES:
            # Chroma's own errors after a write failed on a full disk name its compactor or
            # its logs, not the disk.
            return StoreUnavailableError(
                f"{where} cannot be used: the disk is full ({free // 2**20} MB free); free "
                "space, then run `citebot index` again"
            )
        return StoreUnavailableError(f"{where} cannot be used ({_first_line(error)})")
    return None


def _free_bytes(folder: Path) -> int | None:
    """Free space on the file system holding `folder` (or its nearest existing parent)."""
    for path in (folder, *folder.parents):
        try:
            return shutil.disk_usage(path).free
        except OSError:
            continue
    return None


def folder_fault(error: BaseException, folder: Path) -> StoreUnavailableError | None:
    """The error when a file in `folder` cannot be written or opened because the disk is full,
    the folder is read-only or it is gone (SQLite says only "unable to open database file"
    then); None for other errors."""
    text = str(error).casefold()
    number = getattr(error, "errno", None)
    unopenable = "unable to open" in text
    if number == errno.ENOSPC or any(mark in text for mark in _DISK_FULL):
        return StoreUnavailableError(
            f"the index is unavailable: {folder} cannot be written: the disk is full; free space"
        )
    if (
        number in (errno.EACCES, errno.EPERM, errno.EROFS)
        or isinstance(error, PermissionError)
        or any(mark in text for mark in _READ_ONLY)
        or (unopenable and folder.is_dir() and not os.access(folder, os.W_OK))
    ):
        return StoreUnavailableError(
            f"the index is unavailable: {folder} cannot be written: fix the folder's "
            "permissions (or point CITEBOT_DATA_DIR at a writable folder)"
        )
    if unopenable and not folder.is_dir():
        return gone(folder)
    return None


def gone(folder: Path) -> StoreUnavailableError:
    """The error for a data folder that was removed while Citebot used it."""
    return StoreUnavailableError(
        f"the index is unavailable: {folder} is gone; restore it, or run `citebot index PATH` "
        "to build it again"
    )


def _identity(path: Path) -> tuple[int, int] | None:
    """Which file `path` is (device, inode), or None when there is none."""
    try:
        found = path.stat()
    except OSError:
        return None
    return found.st_dev, found.st_ino


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0][:200]
