"""This host's copy of a corpus's chunks (text, metadata and packed passages), in one SQLite
file.

A question reads the passages of about 150 chunks (its dense and BM25 candidates) and the
records of the 30 it ranks. From Chroma that is a metadata read per record, and in server mode
a few MB of JSON over HTTP: tens of ms at 100k chunks, hundreds when the page cache is cold.
From a local table keyed by chunk id it is a few milliseconds. Chunk ids are content-addressed
and the file is named by the collection, the embedder and the index format, so a row never goes
stale (but for an article's path, which a moved folder changes: the store takes it from the
manifests); rows of chunks no longer live are pruned when it is brought up to date.

The copy is only a cache: readers fill it in the background from Chroma (`fill`), and every
chunk it lacks, or a file that cannot be opened or written (read-only or full disk, damaged),
is read from Chroma as before.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from index.passage_codec import decode_passages, packed_fields
from index.records import ChunkPassages

log = logging.getLogger(__name__)

# Ids per statement: below SQLite's bound-parameter limit on every build.
_IDS_PER_QUERY = 500
# A fill of at most this many chunks (a reindex's changes: well under a second from Chroma) is
# done before the reader answers; a larger one (a new host) goes on in the background.
_FILL_NOW = 1000
# Open copies by path: one connection and one filler per file in a process.
_OPEN: dict[Path, PassageReplica | None] = {}
_OPEN_LOCK = threading.Lock()

# A chunk as the store keeps it: id, packed passages, text, metadata.
ReplicaRow = tuple[str, dict[str, Any], str, dict[str, Any]]
RowReader = Callable[[list[str]], Iterable[ReplicaRow]]
_SCHEMA = """
CREATE TABLE IF NOT EXISTS passages (
    chunk_id TEXT PRIMARY KEY,
    spans TEXT NOT NULL,
    dimension INTEGER NOT NULL,
    vectors BLOB NOT NULL,
    document TEXT NOT NULL,
    metadata TEXT NOT NULL
)
"""
# Part of the file's name: a copy laid out otherwise is not opened. 2: a rowid table (rows of
# 17 KB read three times faster than from a WITHOUT ROWID one, whose rows should be small).
# 3: the chunk's text and metadata beside its passages.
_LAYOUT = 3


def replica_path(folder: Path, collection: str, embedder_identity: str, index_format: int) -> Path:
    """Where the copy of a collection's passages as this embedder and format wrote them lives."""
    key = f"{embedder_identity}\0{index_format}\0{_LAYOUT}"
    key = hashlib.sha256(key.encode()).hexdigest()[:16]
    return folder / collection / f"{key}.sqlite"


class PassageReplica:
    """Chunks and their packed passages by chunk id in a local SQLite file, shared by the
    threads of a process and by the processes of a host (WAL: readers never wait for a fill)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._db = self._connect()
        self._broken = False
        self._requests = threading.Lock()
        self._pending: tuple[list[str], RowReader] | None = None
        self._filler: threading.Thread | None = None

    @classmethod
    def shared(cls, path: Path) -> PassageReplica | None:
        """This process's copy at `path` (opened once; see `open`)."""
        with _OPEN_LOCK:
            if path not in _OPEN:
                _OPEN[path] = cls.open(path)
            return _OPEN[path]

    @classmethod
    def open(cls, path: Path) -> PassageReplica | None:
        """The copy at `path`, created if needed; a damaged file is replaced. None (with a
        warning) when the folder cannot hold one: reads then go to Chroma."""
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            try:
                return cls(path)
            except sqlite3.DatabaseError as error:
                if isinstance(error, sqlite3.OperationalError):
                    raise
                log.warning("the passage cache %s is damaged (%s); starting it afresh", path, error)
                for suffix in ("", "-wal", "-shm"):
                    path.with_name(path.name + suffix).unlink(missing_ok=True)
                return cls(path)
        except (OSError, sqlite3.Error) as error:
            log.warning("could not keep a passage cache in %s: %s", path.parent, error)
            return None

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=10.0, check_same_thread=False)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")  # a cache: a power cut may lose the last page
            db.execute(_SCHEMA)
            db.execute("SELECT count(*) FROM passages LIMIT 1").fetchone()
            db.commit()
        except sqlite3.Error:
            db.close()
            raise
        return db

    def get(self, chunk_ids: Sequence[str]) -> dict[str, ChunkPassages]:
        """The passages held for these chunks; chunks it lacks are left out (and so is
        everything once the file failed)."""
        return {
            chunk_id: decode_passages(spans, dimension, vectors)
            for chunk_id, spans, dimension, vectors in self._select(
                "spans, dimension, vectors", chunk_ids
            )
        }

    def chunks(self, chunk_ids: Sequence[str]) -> dict[str, tuple[str, dict[str, Any]]]:
        """(text, metadata) of the chunks held among these, as Chroma stores them."""
        return {
            chunk_id: (document, json.loads(metadata))
            for chunk_id, document, metadata in self._select("document, metadata", chunk_ids)
        }

    def _select(self, columns: str, chunk_ids: Sequence[str]) -> list[tuple[Any, ...]]:
        """(chunk id, *columns) of the rows held for these chunks; none once the file failed."""
        if self._broken:
            return []
        rows: list[tuple[Any, ...]] = []
        try:
            with self._lock:
                for first in range(0, len(chunk_ids), _IDS_PER_QUERY):
                    batch = list(chunk_ids[first : first + _IDS_PER_QUERY])
                    rows += self._db.execute(
                        f"SELECT chunk_id, {columns} FROM passages "
                        f"WHERE chunk_id IN ({','.join('?' * len(batch))})",
                        batch,
                    ).fetchall()
        except sqlite3.Error as error:
            self._fail("read", error)
            return []
        return rows

    def missing(self, chunk_ids: Iterable[str]) -> list[str]:
        """The chunks among these it holds no passages for, in the order given."""
        wanted = list(chunk_ids)
        held = self._held()
        return [chunk_id for chunk_id in wanted if chunk_id not in held]

    def add(self, rows: Iterable[ReplicaRow]) -> int:
        """Store chunks with their passages packed as the store keeps them
        (`index.passage_codec`), one transaction per page of the stream, so a fill cut short
        keeps what it wrote. Returns how many were stored; stops (with a warning) when the file
        cannot be written."""
        stored = 0
        page: list[tuple[str, str, int, bytes, str, str]] = []
        try:
            for chunk_id, packed, document, metadata in rows:
                fields = (document, json.dumps(metadata, ensure_ascii=False))
                page.append((chunk_id, *packed_fields(packed), *fields))
                if len(page) >= _IDS_PER_QUERY:
                    stored += self._insert(page)
                    page = []
            stored += self._insert(page)
        except sqlite3.Error as error:
            self._fail("write", error)
        return stored

    def keep_only(self, live: Iterable[str]) -> int:
        """Delete the rows of chunks not in `live`; how many went."""
        keep = set(live)
        gone = [chunk_id for chunk_id in self._held() if chunk_id not in keep]
        try:
            with self._lock, self._db:
                for first in range(0, len(gone), _IDS_PER_QUERY):
                    batch = gone[first : first + _IDS_PER_QUERY]
                    self._db.execute(
                        f"DELETE FROM passages WHERE chunk_id IN ({','.join('?' * len(batch))})",
                        batch,
                    )
        except sqlite3.Error as error:
            self._fail("prune", error)
            return 0
        return len(gone)

    def fill(self, live: Iterable[str], read: RowReader) -> None:
        """Bring the copy up to the live chunks: those it lacks read with `read` (from Chroma)
        and stored, rows of chunks no longer live deleted. A few now; many in the background,
        while the chunks it still lacks are read from Chroma."""
        wanted = list(live)
        if len(self.missing(wanted)) <= _FILL_NOW:
            self._fill(wanted, read)
            return
        with self._requests:
            self._pending = (wanted, read)
            if self._filler is None:
                self._filler = threading.Thread(
                    target=self._fill_pending, name="citebot-passage-fill", daemon=True
                )
                self._filler.start()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for a background fill; whether none is running."""
        filler = self._filler
        if filler is not None:
            filler.join(timeout)
        return self._filler is None

    def _fill_pending(self) -> None:
        """The background filler: the newest request, until none is left."""
        while True:
            with self._requests:
                request, self._pending = self._pending, None
                if request is None:
                    self._filler = None
                    return
            try:
                self._fill(*request)
            except Exception as error:  # a cache: Chroma down now is read through later
                log.warning("filling the passage cache %s stopped: %s", self.path, error)

    def _fill(self, live: list[str], read: RowReader) -> None:
        held = self._held()
        lacking = [chunk_id for chunk_id in live if chunk_id not in held]
        if lacking:
            self.add(read(lacking))
        if len(held) + len(lacking) > len(live):
            self.keep_only(live)

    def close(self) -> None:
        with self._lock:
            self._db.close()
        self._broken = True

    def _held(self) -> set[str]:
        if self._broken:
            return set()
        try:
            with self._lock:
                return {row[0] for row in self._db.execute("SELECT chunk_id FROM passages")}
        except sqlite3.Error as error:
            self._fail("read", error)
            return set()

    def _insert(self, page: list[tuple[str, str, int, bytes, str, str]]) -> int:
        if not page or self._broken:
            return 0
        with self._lock, self._db:
            self._db.executemany("INSERT OR REPLACE INTO passages VALUES (?, ?, ?, ?, ?, ?)", page)
        return len(page)

    def _fail(self, action: str, error: sqlite3.Error) -> None:
        """Stop using the file after its first fault (full or read-only disk, damage): reads go
        to Chroma, which holds every passage anyway."""
        if not self._broken:
            log.warning(
                "the passage cache %s could not %s (%s); reading passages from Chroma",
                self.path,
                action,
                error,
            )
        self._broken = True
