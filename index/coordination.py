"""Who may write an index, and which version of it readers should see, kept in Chroma itself.

A small `citebot.meta` collection holds, per logical collection:
- `live:<name>`: the pointer, naming the physical collection readers use and its generation.
  Every completed index run that changed something bumps the generation; a long-lived reader
  compares it (one `get` by id) before each answer and reloads when it moved. A blue-green
  rebuild switches the pointer to a new physical collection.
- `lease:<name>:<epoch>`: the writer's lease (owner, host, pid, expiry), renewed while indexing.
  Chroma ignores an `add` of an existing id, so taking epoch N+1 is a compare-and-set: of two
  writers racing for it exactly one gets it. A dead writer's lease is taken over once expired.

Nothing here needs a shared file system, so two hosts with one Chroma server coordinate too.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chromadb.errors import NotFoundError

from index.chroma import ChromaConnection
from index.store_errors import IndexBusyError, StoreError

log = logging.getLogger(__name__)

META_COLLECTION = "citebot.meta"
_VECTOR = [1.0]  # Chroma wants a vector for every record; the meta records need none.


@dataclass(frozen=True)
class LivePointer:
    """What readers of a collection should read: `physical` (None before the first index run)
    at `generation`, published by `writer` ("host:pid")."""

    physical: str | None
    generation: int
    writer: str = ""


class MetaStore:
    """The meta collection of one Chroma location."""

    def __init__(self, connection: ChromaConnection) -> None:
        self._connection = connection

    def _collection(self, create: bool) -> Any:
        client = self._connection.client
        with self._connection.guard():
            if create:
                return client.get_or_create_collection(META_COLLECTION, embedding_function=None)
            try:
                return client.get_collection(META_COLLECTION, embedding_function=None)
            except NotFoundError:
                return None

    def pointer(self, name: str) -> LivePointer:
        """The live pointer of a collection; generation 0 and no physical one before any run."""
        collection = self._collection(create=False)
        if collection is None:
            return LivePointer(None, 0)
        with self._connection.guard():
            found = collection.get(ids=[f"live:{name}"], include=["metadatas"])
        if not found["ids"]:
            return LivePointer(None, 0)
        metadata = found["metadatas"][0]
        return LivePointer(
            str(metadata["physical"]), int(metadata["generation"]), str(metadata["writer"])
        )

    def publish(self, name: str, physical: str, generation: int) -> None:
        """Point readers at `physical` as `generation` (the caller holds the lease)."""
        with self._connection.guard():
            self._collection(create=True).upsert(
                ids=[f"live:{name}"],
                embeddings=[_VECTOR],
                metadatas=[
                    {
                        "physical": physical,
                        "generation": generation,
                        "writer": _this_process(),
                        "published": time.time(),
                    }
                ],
            )

    def leases(self, name: str) -> dict[int, dict[str, Any]]:
        """Every stored lease record of a collection, by epoch."""
        collection = self._collection(create=True)
        with self._connection.guard():
            found = collection.get(where={"lease": name}, include=["metadatas"])
        return {int(metadata["epoch"]): metadata for metadata in found["metadatas"]}

    def try_add_lease(self, name: str, epoch: int, record: dict[str, Any]) -> None:
        """Add the lease record of `epoch`; Chroma ignores it when another writer added it first."""
        with self._connection.guard():
            self._collection(create=True).add(
                ids=[_lease_id(name, epoch)],
                embeddings=[_VECTOR],
                metadatas=[{"lease": name, "epoch": epoch, **record}],
            )

    def write_lease(self, name: str, epoch: int, record: dict[str, Any]) -> None:
        """Overwrite this writer's own lease record (to renew or release it)."""
        with self._connection.guard():
            self._collection(create=True).upsert(
                ids=[_lease_id(name, epoch)],
                embeddings=[_VECTOR],
                metadatas=[{"lease": name, "epoch": epoch, **record}],
            )

    def delete_leases(self, name: str, epochs: list[int]) -> None:
        if epochs:
            with self._connection.guard():
                self._collection(create=True).delete(ids=[_lease_id(name, e) for e in epochs])


class WriterLease:
    """The right to write one collection, held in Chroma and renewed by a background thread.

    Clocks of the hosts are assumed to agree to well under the lease's length.
    """

    def __init__(self, meta: MetaStore, name: str, seconds: float) -> None:
        self._meta = meta
        self._name = name
        self._seconds = seconds
        self._owner = uuid.uuid4().hex
        self._epoch = 0
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None

    def __enter__(self) -> WriterLease:
        self.acquire()
        return self

    def __exit__(self, error_type: type[BaseException] | None, *_: object) -> None:
        self.release(quiet=error_type is not None)

    def acquire(self) -> None:
        """Take the lease, or raise `IndexBusyError` when a live writer holds it."""
        leases = self._meta.leases(self._name)
        current = max(leases, default=0)
        holder = leases.get(current)
        if holder is not None and _alive(holder):
            raise _busy(self._name, holder)
        epoch = current + 1
        self._meta.try_add_lease(self._name, epoch, self._record(time.time() + self._seconds))
        winner = self._meta.leases(self._name).get(epoch)
        if winner is None or winner["owner"] != self._owner:
            raise _busy(self._name, winner or {})
        self._epoch = epoch
        self._meta.delete_leases(self._name, [e for e in leases if e < epoch])
        self._renewer = threading.Thread(target=self._renew_until_stopped, daemon=True)
        self._renewer.start()

    def check(self) -> None:
        """Raise `IndexBusyError` unless this writer still holds the lease (before publishing)."""
        leases = self._meta.leases(self._name)
        newest = leases.get(max(leases, default=0), {})
        if newest.get("owner") != self._owner:
            raise IndexBusyError(
                f"this run lost its writer lease on {self._name!r} (it expired while the "
                "run was stalled, and another writer took over); nothing was published"
            )
        self._renew()

    def release(self, *, quiet: bool = False) -> None:
        """Stop renewing and mark the lease free (expired now). `quiet`: the run is already
        failing (a full disk, a store gone), so the error it raises is the one line to show and
        a lease that cannot be written is only logged at debug level (it expires by itself)."""
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join(timeout=self._seconds)
        if self._epoch:
            try:
                self._meta.write_lease(self._name, self._epoch, self._record(0.0))
            except StoreError as error:
                log.log(
                    logging.DEBUG if quiet else logging.WARNING,
                    "could not release the writer lease (it expires by itself): %s",
                    error,
                )

    def _record(self, expires: float) -> dict[str, Any]:
        return {
            "owner": self._owner,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "expires": expires,
        }

    def _renew(self) -> None:
        self._meta.write_lease(self._name, self._epoch, self._record(time.time() + self._seconds))

    def _renew_until_stopped(self) -> None:
        while not self._stop.wait(self._seconds / 3):
            try:
                self._renew()
            except StoreError as error:  # the run fails on its next write anyway
                log.warning("could not renew the writer lease: %s", error)


def _alive(holder: dict[str, Any]) -> bool:
    """Whether a lease's writer may still be running: not expired, and, when it ran on this
    host, its process still exists (a killed `citebot index` here is taken over at once)."""
    if float(holder["expires"]) <= time.time():
        return False
    if holder.get("host") != socket.gethostname():
        return True
    try:
        os.kill(int(holder["pid"]), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, ValueError):
        return True
    return True


def _busy(name: str, holder: dict[str, Any]) -> IndexBusyError:
    who = f" (host {holder.get('host', '?')}, pid {holder.get('pid', '?')})" if holder else ""
    return IndexBusyError(
        f"another Citebot process{who} is writing the index {name!r}; "
        "wait for it to finish and try again"
    )


def _lease_id(name: str, epoch: int) -> str:
    return f"lease:{name}:{epoch}"


def _this_process() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def published_here(pointer: LivePointer) -> bool:
    """Whether this very process published the pointer (its own writes need no reopen)."""
    return pointer.writer == _this_process()


_LOCK_FILE = "index.lock"


@contextmanager
def writer_lock(data_dir: Path) -> Iterator[None]:
    """Hold the data directory's writer lock, or fail at once if another process holds it.

    An embedded Chroma cannot be shared by two writing processes, so embedded mode holds this
    as well as the lease. (filelock is imported here, by writers only: readers never lock.)
    """
    from filelock import FileLock, Timeout

    data_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(data_dir / _LOCK_FILE))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise IndexBusyError(
            f"another Citebot process is writing the index in {data_dir}; "
            "wait for it to finish and try again"
        ) from None
    try:
        yield
    finally:
        lock.release()
