"""The chunk store: a corpus's chunks in one Chroma collection, and the passages that find them
(each sentence, and each pair of adjacent sentences, with its own vector) in a second one.

Chroma facts this module is shaped by (chromadb 1.5): `upsert` merges metadata into an old
record and `add` of an existing id is ignored, so a changed article's chunks are deleted before
its new ones are added; two writing processes silently lose vectors, so writers hold a lock;
a long-lived client does not see another process's writes, so readers reopen on a new stamp.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import chromadb
import numpy as np
from chromadb.api import ClientAPI
from chromadb.api.client import SharedSystemClient
from chromadb.errors import NotFoundError
from filelock import FileLock, Timeout

from index.articles import Article
from index.chunking import Chunk
from index.errors import CitebotError, ConfigError

_COLLECTION_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9._-]{1,510}[a-zA-Z0-9]$")
_STAMP_FILE = "index-stamp.json"
# Bumped when what an index holds changes. 2: sentence vectors beside the chunk vectors; 3: a
# passage collection of sentences and two-sentence windows, chunk vectors their sentences' mean.
INDEX_FORMAT = 3
_LOCK_FILE = "index.lock"


class StoreError(CitebotError):
    """Base for index problems a user can act on; the message says what to do."""


class IndexMissingError(StoreError):
    """There is no index to read yet."""


class EmbedderMismatchError(StoreError):
    """The index was built with another embedding backend or model than the one configured."""


class OutdatedIndexError(StoreError):
    """The index was built by an older Citebot whose layout this one cannot read."""


class IndexBusyError(StoreError):
    """Another process is writing this index."""


@dataclass(frozen=True)
class StoredArticle:
    """What the store knows of an indexed article: enough to tell if it changed or is partial."""

    content_hash: str
    expected_chunks: int
    stored_chunks: int

    @property
    def complete(self) -> bool:
        return self.stored_chunks == self.expected_chunks


@dataclass(frozen=True)
class StoredChunk:
    """A chunk as the store returns it, with its similarity to the query (cosine, 1 is best)."""

    chunk_id: str
    article_id: str
    text: str
    title: str
    date: str | None
    url: str | None
    path: str
    ordinal: int
    start: int
    end: int
    score: float


def validate_collection_name(name: str) -> str:
    """Chroma's rule for names, checked early with a message a user understands."""
    if not _COLLECTION_NAME.match(name):
        raise ConfigError(
            f"collection name {name!r} must be 3-512 characters of letters, digits, '.', '_' "
            "or '-', starting and ending with a letter or digit"
        )
    return name


def open_client(data_dir: Path) -> ClientAPI:
    """An embedded Chroma client storing under `data_dir/chroma`, telemetry off."""
    chroma_dir = data_dir / "chroma"
    chroma_dir.mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(
        path=str(chroma_dir), settings=chromadb.Settings(anonymized_telemetry=False)
    )


@contextmanager
def writer_lock(data_dir: Path) -> Iterator[None]:
    """Hold the data directory's writer lock, or fail at once if another process holds it."""
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


def write_stamp(data_dir: Path, summary: dict[str, Any]) -> None:
    """Record that the index changed, so readers in other processes reopen it."""
    stamp = {"pid": os.getpid(), **summary}
    temporary = data_dir / f".{_STAMP_FILE}.{os.getpid()}"
    temporary.write_text(json.dumps(stamp, ensure_ascii=False), encoding="utf-8")
    temporary.replace(data_dir / _STAMP_FILE)


def read_stamp(data_dir: Path) -> dict[str, Any] | None:
    """The last index run's stamp, or None before the first run."""
    try:
        return json.loads((data_dir / _STAMP_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


class ChromaConnection:
    """A Chroma client that reopens when another process has changed the index since."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self._seen_stamp = read_stamp(data_dir)
        self.client = open_client(data_dir)

    def refresh(self) -> bool:
        """Reopen the client if another process wrote a new stamp; True when it reopened."""
        stamp = read_stamp(self.data_dir)
        if stamp == self._seen_stamp:
            return False
        self._seen_stamp = stamp
        if stamp is None or stamp.get("pid") == os.getpid():
            return False
        SharedSystemClient.clear_system_cache()
        self.client = open_client(self.data_dir)
        return True


PassageKind = Literal["sentence", "window"]
_KIND_CODES: dict[str, PassageKind] = {"s": "sentence", "w": "window"}


def passage_id(chunk_id: str, kind: PassageKind, n: int) -> str:
    """`<chunk id>.s<n>` or `<chunk id>.w<n>`: the id says whose passage it is, and what kind."""
    return f"{chunk_id}.{kind[0]}{n}"


def _parse_passage_id(passage: str) -> tuple[str, PassageKind]:
    chunk_id, _, code = passage.rpartition(".")
    return chunk_id, _KIND_CODES[code[0]]


@dataclass(frozen=True)
class PassageRecord:
    """A sentence of a chunk, or a window of two adjacent ones, embedded on its own.

    A question usually asks about one sentence, which a whole chunk's vector dilutes; a window
    adds the neighbour that resolves "it" and "the company" (measured in `bench/quality.py`).
    """

    id: str
    chunk_id: str
    text: str
    kind: PassageKind


@dataclass(frozen=True)
class PassageHit:
    """A passage near a query vector: the chunk it belongs to, its kind and cosine similarity."""

    chunk_id: str
    kind: PassageKind
    score: float


class ChunkStore:
    """Chunks of one corpus in a Chroma collection, and their passages in a second one, tied
    to the embedder that built them."""

    def __init__(self, client: ClientAPI, name: str, embedder_identity: str) -> None:
        self._client = client
        self.name = validate_collection_name(name)
        self._passages_name = validate_collection_name(f"{name}.passages")
        self._embedder_identity = embedder_identity
        self._collection: Any = None
        self._passages: Any = None

    def open_for_writing(self) -> None:
        """Create the collections if needed; refuse ones built by another embedder or format."""
        metadata = {"embedder": self._embedder_identity, "format": INDEX_FORMAT}
        self._collection = self._client.get_or_create_collection(
            self.name,
            embedding_function=None,
            configuration={"hnsw": {"space": "cosine"}},
            metadata=metadata,
        )
        self._check_compatible()
        self._passages = self._client.get_or_create_collection(
            self._passages_name,
            embedding_function=None,
            configuration={"hnsw": {"space": "cosine"}},
            metadata=metadata,
        )

    def open_for_reading(self) -> None:
        """Open existing collections; say how to build them when there are none."""
        try:
            self._collection = self._client.get_collection(self.name, embedding_function=None)
        except NotFoundError:
            raise IndexMissingError(
                f"no index named {self.name!r} yet: run `citebot index PATH` first"
            ) from None
        self._check_compatible()
        self._passages = self._client.get_collection(self._passages_name, embedding_function=None)

    def drop(self) -> None:
        """Delete both collections (for a rebuild)."""
        for name in (self.name, self._passages_name):
            with suppress(NotFoundError):
                self._client.delete_collection(name)
        self._collection = self._passages = None

    def count(self) -> int:
        return int(self._collection.count())

    def _pages(self, include: list[str]) -> Iterator[dict[str, Any]]:
        """The whole chunk collection, a batch at a time."""
        batch = self._client.get_max_batch_size()
        for offset in range(0, self.count(), batch):
            yield self._collection.get(include=include, limit=batch, offset=offset)

    def stored_articles(self) -> dict[str, StoredArticle]:
        """Every article in the store with its content hash and how many chunks it has."""
        hashes: dict[str, tuple[str, int]] = {}
        counts: dict[str, int] = {}
        for page in self._pages(["metadatas"]):
            for metadata in page["metadatas"]:
                article_id = str(metadata["article"])
                hashes[article_id] = (str(metadata["content_hash"]), int(metadata["chunk_count"]))
                counts[article_id] = counts.get(article_id, 0) + 1
        return {
            article_id: StoredArticle(content_hash, expected, counts[article_id])
            for article_id, (content_hash, expected) in hashes.items()
        }

    def texts(self) -> tuple[list[str], list[str]]:
        """Every chunk's id and its title plus text: what the lexical index is built from."""
        ids: list[str] = []
        texts: list[str] = []
        for page in self._pages(["documents", "metadatas"]):
            ids.extend(page["ids"])
            texts.extend(
                f"{metadata.get('title', '')}\n{document}"
                for document, metadata in zip(page["documents"], page["metadatas"], strict=True)
            )
        return ids, texts

    def chunk_ids(self) -> list[str]:
        """Every chunk id, to check that a saved lexical index still matches."""
        return [chunk_id for page in self._pages([]) for chunk_id in page["ids"]]

    def get(self, chunk_ids: Sequence[str]) -> dict[str, StoredChunk]:
        """Chunks by id (score 0: the caller knows why it asked for them)."""
        if not chunk_ids:
            return {}
        page = self._collection.get(ids=list(chunk_ids), include=["documents", "metadatas"])
        return {
            chunk_id: _stored_chunk(chunk_id, text, metadata, 0.0)
            for chunk_id, text, metadata in zip(
                page["ids"], page["documents"], page["metadatas"], strict=True
            )
        }

    def delete_article(self, article_id: str) -> None:
        self._collection.delete(where={"article": article_id})
        self._passages.delete(where={"article": article_id})

    def replace_article(
        self,
        article: Article,
        chunks: Sequence[Chunk],
        vectors: np.ndarray,
        passages: Sequence[PassageRecord],
        passage_vectors: np.ndarray,
    ) -> None:
        """Store an article's new chunks and passages, then drop its old ones.

        New before old, so a reader at any moment finds the old or the new version of the
        article, never neither. Upsert is safe here because every metadata key is always
        written (absent values as ""), so no stale key survives from an old record. Passages
        go first: the chunks' count is what marks the article complete.
        """
        self._upsert(
            self._passages,
            [passage.id for passage in passages],
            passage_vectors,
            [passage.text for passage in passages],
            [
                {"article": article.id, "chunk": passage.chunk_id, "kind": passage.kind}
                for passage in passages
            ],
        )
        self._upsert(
            self._collection,
            [chunk.id for chunk in chunks],
            vectors,
            [chunk.text for chunk in chunks],
            [_chunk_metadata(article, chunk, len(chunks)) for chunk in chunks],
        )
        for collection, new_ids in (
            (self._collection, {chunk.id for chunk in chunks}),
            (self._passages, {passage.id for passage in passages}),
        ):
            old = collection.get(where={"article": article.id}, include=[])["ids"]
            stale = [record_id for record_id in old if record_id not in new_ids]
            if stale:
                collection.delete(ids=stale)

    def _upsert(
        self,
        collection: Any,
        ids: list[str],
        vectors: np.ndarray,
        documents: list[str],
        metadatas: list[dict[str, Any]],
    ) -> None:
        batch = self._client.get_max_batch_size()
        for first in range(0, len(ids), batch):
            end = first + batch
            collection.upsert(
                ids=ids[first:end],
                embeddings=vectors[first:end],
                documents=documents[first:end],
                metadatas=metadatas[first:end],
            )

    def search_passages(self, vector: np.ndarray, k: int) -> list[PassageHit]:
        """The `k` passages nearest to a query vector, best first.

        Chunk and kind are read from the passage id (`passage_id`), not from the metadata:
        fetching metadata for a few hundred hits would cost more than the search itself.
        """
        # Chroma returns fewer hits when it holds fewer; counting first would cost more than
        # the search.
        result = self._passages.query(query_embeddings=[vector], n_results=k, include=["distances"])
        return [
            PassageHit(*_parse_passage_id(passage_id), 1.0 - distance)
            for passage_id, distance in zip(result["ids"][0], result["distances"][0], strict=True)
        ]

    def sentences_of(self, chunk_ids: Sequence[str]) -> list[tuple[str, str, np.ndarray]]:
        """(chunk id, sentence, vector) for every stored sentence of these chunks."""
        if not chunk_ids:
            return []
        page = self._passages.get(
            where={"$and": [{"chunk": {"$in": list(chunk_ids)}}, {"kind": "sentence"}]},
            include=["documents", "metadatas", "embeddings"],
        )
        return [
            (str(metadata["chunk"]), document, np.asarray(vector))
            for document, metadata, vector in zip(
                page["documents"], page["metadatas"], page["embeddings"], strict=True
            )
        ]

    def _check_compatible(self) -> None:
        metadata = self._collection.metadata or {}
        if metadata.get("format") != INDEX_FORMAT:
            raise OutdatedIndexError(
                f"the index {self.name!r} was built by an older Citebot; rebuild it with "
                "`citebot index --rebuild PATH`"
            )
        built_with = metadata.get("embedder")
        if built_with != self._embedder_identity:
            raise EmbedderMismatchError(
                f"the index {self.name!r} was built with {built_with}, but the configured "
                f"embedder is {self._embedder_identity}; rebuild it with "
                "`citebot index --rebuild PATH` (or configure the original model)"
            )


def _chunk_metadata(article: Article, chunk: Chunk, chunk_count: int) -> dict[str, Any]:
    metadata = {
        "article": article.id,
        "path": str(article.path),
        "title": article.title,
        "date": article.date,
        "url": article.url,
        "source": article.source,
        "content_hash": article.content_hash,
        "chunk_count": chunk_count,
        "ordinal": chunk.ordinal,
        "start": chunk.start,
        "end": chunk.end,
        "tokens": chunk.token_count,
    }
    return {key: "" if value is None else value for key, value in metadata.items()}


def _stored_chunk(chunk_id: str, text: str, metadata: dict[str, Any], score: float) -> StoredChunk:
    return StoredChunk(
        chunk_id=chunk_id,
        article_id=str(metadata["article"]),
        text=text,
        title=str(metadata.get("title", "")),
        date=metadata.get("date") or None,
        url=metadata.get("url") or None,
        path=str(metadata.get("path", "")),
        ordinal=int(metadata.get("ordinal", 0)),
        start=int(metadata.get("start", 0)),
        end=int(metadata.get("end", 0)),
        score=float(score),
    )
