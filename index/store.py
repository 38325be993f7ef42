"""The chunk store: one physical version of a corpus in three Chroma collections.

- `<physical>`: the chunks, with their text, citation metadata and vector (the one searched);
- `<physical>.passages`: one record per chunk holding its sentences' spans and the vectors of
  its sentences and of its pairs of adjacent sentences (`index.passage_codec`), read for the
  chunks a search found;
- `<physical>.articles`: one manifest per article naming its live version's chunks.

Chroma facts this module is shaped by (chromadb 1.5): `upsert` merges metadata into an old
record, so every key is always written; a write of many records is not atomic, so an article's
new version is written under new chunk ids, and its manifest, written last, is what makes it
live; readers accept only the chunks the manifests name.
"""

from __future__ import annotations

import json
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from contextlib import suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
from chromadb.errors import NotFoundError

from index.aliases import NameMentions, name_mentions
from index.chroma import ChromaConnection
from index.chunking import Chunk
from index.coordination import writer_lock
from index.errors import ConfigError
from index.lexical import LexicalSource
from index.passage_codec import pack_passages, unpack_passages
from index.passage_replica import PassageReplica, ReplicaRow
from index.records import ChunkPassages, PassageKind, PassageRecord, StoredArticle, StoredChunk
from index.store_errors import (
    EmbedderMismatchError,
    IndexBusyError,
    IndexMissingError,
    OutdatedIndexError,
    StoreError,
    StoreUnavailableError,
)

if TYPE_CHECKING:
    from index.articles import Article  # not imported by readers: parsing is a writer's work

__all__ = [
    "INDEX_FORMAT",
    "ChromaConnection",
    "ChunkPassages",
    "ChunkStore",
    "EmbedderMismatchError",
    "IndexBusyError",
    "IndexMissingError",
    "OutdatedIndexError",
    "PassageKind",
    "PassageRecord",
    "StoreError",
    "StoreUnavailableError",
    "StoredArticle",
    "StoredChunk",
    "validate_collection_name",
    "writer_lock",
]

_COLLECTION_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9._-]{1,510}[a-zA-Z0-9]$")
# Bumped when what an index holds changes. 2: sentence vectors beside the chunk vectors; 3: a
# passage collection of sentences and two-sentence windows, chunk vectors their sentences' mean;
# 4: per-article manifests, chunk ids per article version; 5: chunk vectors searched, each
# chunk's passage vectors packed in one record.
INDEX_FORMAT = 5
# Passage records of this many chunks are kept in memory: ids are content-addressed, so a cached
# record never goes stale, and the chunks a question's search finds are often the last one's.
_PASSAGE_CACHE = 4096
_T = TypeVar("_T")


def validate_collection_name(name: str) -> str:
    """Chroma's rule for names, checked early with a message a user understands."""
    if not _COLLECTION_NAME.match(name):
        raise ConfigError(
            f"collection name {name!r} must be 3-512 characters of letters, digits, '.', '_' "
            "or '-', starting and ending with a letter or digit"
        )
    return name


@dataclass(frozen=True)
class ArticleVersion:
    """One article's new version, ready to store: its chunks and passages with their vectors."""

    article: Article
    chunks: Sequence[Chunk]
    vectors: np.ndarray
    passages: Sequence[PassageRecord]
    passage_vectors: np.ndarray


class ChunkStore:
    """One physical version of a corpus, tied to the embedder that built it.

    `live` (set by the reader that opens it) is the set of chunk ids of live article versions;
    passage hits of other chunks (an update in progress, a killed run's leftovers) are dropped.
    """

    def __init__(self, connection: ChromaConnection, name: str, embedder_identity: str) -> None:
        self._connection = connection
        self.name = validate_collection_name(name)
        self._passages_name = validate_collection_name(f"{name}.passages")
        self._manifests_name = validate_collection_name(f"{name}.articles")
        self._embedder_identity = embedder_identity
        self._collection: Any = None
        self._passages: Any = None
        self._manifests: Any = None
        self._passage_cache: OrderedDict[str, ChunkPassages] = OrderedDict()
        self._cache_lock = threading.Lock()
        self.live: frozenset[str] | None = None
        # This host's copy of the chunks and passages, read before Chroma (set by the reader).
        self.replica: PassageReplica | None = None
        # Each article's path as its manifest last read says: the one source of a path, since a
        # moved article keeps its chunks (and their copies on other hosts) and only its path
        # changes.
        self._article_paths: dict[str, str] = {}

    @property
    def collection_names(self) -> tuple[str, str, str]:
        return self.name, self._passages_name, self._manifests_name

    def _guarded(self, call: Callable[[], _T]) -> _T:
        """One Chroma call, its faults turned into user-facing errors. A collection that
        vanished under a reader was replaced by a rebuild: the next question reads the new one."""
        with self._connection.guard():
            try:
                return call()
            except NotFoundError:
                raise StoreUnavailableError(
                    f"the index {self.name!r} was replaced while it was being read; "
                    "ask again to use the new one"
                ) from None

    def open_for_writing(self) -> None:
        """Create the collections if needed; refuse ones built by another embedder or format."""
        client = self._connection.client
        metadata = {"embedder": self._embedder_identity, "format": INDEX_FORMAT}

        def create(name: str, space: str = "cosine") -> Any:
            return client.get_or_create_collection(
                name,
                embedding_function=None,
                configuration={"hnsw": {"space": space}},
                metadata=metadata,
            )

        with self._connection.guard():
            self._collection = create(self.name)
            self._check_compatible()
            self._passages = create(self._passages_name, "l2")
            self._manifests = create(self._manifests_name, "l2")

    def open_for_reading(self) -> None:
        """Open existing collections; say how to build them when there are none."""
        client = self._connection.client
        with self._connection.guard():
            try:
                self._collection = client.get_collection(self.name, embedding_function=None)
            except NotFoundError:
                raise IndexMissingError(
                    f"no index named {self.name!r} yet: run `citebot index PATH` first"
                ) from None
            self._check_compatible()
            try:
                self._passages = client.get_collection(self._passages_name, embedding_function=None)
                self._manifests = client.get_collection(
                    self._manifests_name, embedding_function=None
                )
            except NotFoundError:
                raise OutdatedIndexError(_rebuild_hint(self.name, "is incomplete")) from None

    def drop(self) -> None:
        """Delete the collections (after a rebuild replaced them)."""
        client = self._connection.client
        with self._connection.guard():
            for name in self.collection_names:
                with suppress(NotFoundError, ValueError):
                    client.delete_collection(name)
        self._collection = self._passages = self._manifests = None

    def count(self) -> int:
        """How many chunk records the store holds (live or not)."""
        return int(self._guarded(self._collection.count))

    def passage_count(self) -> int:
        return int(self._guarded(self._passages.count))

    def _pages(self, collection: Any, include: list[str]) -> Iterator[dict[str, Any]]:
        """A whole collection, a batch at a time."""
        batch = self._guarded(self._connection.client.get_max_batch_size)
        total = self._guarded(collection.count)
        for offset in range(0, total, batch):
            yield self._guarded(
                lambda offset=offset: collection.get(include=include, limit=batch, offset=offset)
            )

    def _batches(self, ids: Sequence[str]) -> Iterator[list[str]]:
        batch = self._guarded(self._connection.client.get_max_batch_size)
        for first in range(0, len(ids), batch):
            yield list(ids[first : first + batch])

    def manifests(self) -> dict[str, StoredArticle]:
        """Every live article version as its manifest names it (chunks not checked)."""
        found: dict[str, StoredArticle] = {}
        for page in self._pages(self._manifests, ["documents", "metadatas"]):
            for article_id, document, metadata in zip(
                page["ids"], page["documents"], page["metadatas"], strict=True
            ):
                chunk_ids = tuple(json.loads(document))
                found[article_id] = StoredArticle(
                    content_hash=str(metadata["content_hash"]),
                    expected_chunks=len(chunk_ids),
                    stored_chunks=len(chunk_ids),
                    path=str(metadata.get("path", "")),
                    chunk_ids=chunk_ids,
                    passages=int(metadata.get("passages", 0)),
                )
        self._article_paths = {article_id: stored.path for article_id, stored in found.items()}
        return found

    def stored_articles(self) -> dict[str, StoredArticle]:
        """Every article with a manifest, with how many of its chunks are really stored."""
        present = set(self.chunk_ids())
        return {
            article_id: _with_stored(stored, sum(c in present for c in stored.chunk_ids))
            for article_id, stored in self.manifests().items()
        }

    def live_chunk_ids(self) -> list[str]:
        """The chunks of every live article version, in a stable order."""
        return sorted(self.live_versions())

    def live_versions(self) -> dict[str, str]:
        """The chunks of every live article version, each with its version's content hash."""
        return {
            chunk_id: stored.content_hash
            for stored in self.manifests().values()
            for chunk_id in stored.chunk_ids
        }

    def chunk_ids(self) -> list[str]:
        """Every stored chunk id, live or not."""
        return [chunk_id for page in self._pages(self._collection, []) for chunk_id in page["ids"]]

    def passage_ids(self) -> list[str]:
        """Every stored passage id, live or not."""
        return [passage for page in self._pages(self._passages, []) for passage in page["ids"]]

    def lexical_sources(self, live: dict[str, str]) -> Iterator[LexicalSource]:
        """What the lexical index reads of these chunks (id -> article version), a page at a
        time: their titles plus texts and the names tagged in those when they were written. A
        chunk written before names were stored with it is tagged now; a chunk Chroma lacks is
        left out."""
        for batch in self._batches(list(live)):
            page = self._guarded(
                lambda batch=batch: self._collection.get(
                    ids=batch, include=["documents", "metadatas"]
                )
            )
            for chunk_id, document, metadata in zip(
                page["ids"], page["documents"], page["metadatas"], strict=True
            ):
                text = f"{metadata.get('title', '')}\n{document}"
                mentions = _stored_mentions(metadata, text)
                yield LexicalSource(chunk_id, text, mentions, live[chunk_id])

    def get(self, chunk_ids: Sequence[str]) -> dict[str, StoredChunk]:
        """Chunks by id (score 0: the caller knows why it asked for them)."""
        if not chunk_ids:
            return {}
        held = self.replica.chunks(chunk_ids) if self.replica is not None else {}
        lacking = [chunk_id for chunk_id in chunk_ids if chunk_id not in held]
        if lacking:
            held |= dict(self._records(lacking))
        return {
            chunk_id: _stored_chunk(chunk_id, text, self._current_path(metadata), 0.0)
            for chunk_id, (text, metadata) in held.items()
        }

    def _current_path(self, metadata: dict[str, Any]) -> dict[str, Any]:
        """A chunk's metadata with its article's path as the manifests last said (a copy read
        before the article moved still names the old one)."""
        path = self._article_paths.get(str(metadata.get("article", "")))
        return (
            metadata if path is None or path == metadata.get("path") else {**metadata, "path": path}
        )

    def _records(self, chunk_ids: list[str]) -> Iterator[tuple[str, tuple[str, dict[str, Any]]]]:
        """(chunk id, (text, metadata)) of these chunks, from Chroma."""
        page = self._guarded(
            lambda: self._collection.get(ids=chunk_ids, include=["documents", "metadatas"])
        )
        for chunk_id, text, metadata in zip(
            page["ids"], page["documents"], page["metadatas"], strict=True
        ):
            yield chunk_id, (text, metadata)

    def write_versions(self, versions: Sequence[ArticleVersion]) -> None:
        """Store new article versions: passages, then chunks, then the manifests that make
        them live, each in as few Chroma calls as the batch limit allows."""
        if not versions:
            return
        packed = [
            (chunk.id, {"article": version.article.id, **passages})
            for version in versions
            for chunk, passages in zip(version.chunks, _packed(version), strict=True)
        ]
        self._upsert(
            self._passages,
            [chunk_id for chunk_id, _ in packed],
            np.ones((len(packed), 1), dtype=np.float32),
            None,
            [metadata for _, metadata in packed],
        )
        self._upsert(
            self._collection,
            [chunk.id for version in versions for chunk in version.chunks],
            np.concatenate([version.vectors for version in versions]),
            [chunk.text for version in versions for chunk in version.chunks],
            [
                _chunk_metadata(version.article, chunk, len(version.chunks))
                for version in versions
                for chunk in version.chunks
            ],
        )
        self._upsert(
            self._manifests,
            [version.article.id for version in versions],
            np.ones((len(versions), 1), dtype=np.float32),
            [json.dumps([chunk.id for chunk in version.chunks]) for version in versions],
            [_manifest_metadata(version.article, len(version.chunks)) for version in versions],
        )

    def move(self, article: Article, stored: StoredArticle) -> None:
        """Record an unchanged article's new path, without embedding anything again."""
        path = str(article.path)
        for batch in self._batches(stored.chunk_ids):
            self._guarded(
                lambda batch=batch: self._collection.update(
                    ids=batch, metadatas=[{"path": path} for _ in batch]
                )
            )
        self._guarded(
            lambda: self._manifests.update(
                ids=[article.id], metadatas=[_manifest_metadata(article, stored.passages)]
            )
        )

    def retire(self, article_ids: Sequence[str]) -> None:
        """Drop these articles' manifests: from now on no reader sees them."""
        for batch in self._batches(article_ids):
            self._guarded(lambda batch=batch: self._manifests.delete(ids=batch))

    def delete_chunks(self, chunk_ids: Sequence[str]) -> None:
        """Delete chunks and their passage records."""
        for batch in self._batches(sorted(set(chunk_ids))):
            self._guarded(lambda batch=batch: self._passages.delete(ids=batch))
            self._guarded(lambda batch=batch: self._collection.delete(ids=batch))

    def delete_passages(self, passage_ids: Sequence[str]) -> None:
        for batch in self._batches(passage_ids):
            self._guarded(lambda batch=batch: self._passages.delete(ids=batch))

    def _upsert(
        self,
        collection: Any,
        ids: list[str],
        vectors: np.ndarray,
        documents: list[str] | None,
        metadatas: list[dict[str, Any]],
    ) -> None:
        batch = self._guarded(self._connection.client.get_max_batch_size)
        for start in range(0, len(ids), batch):
            end = start + batch
            self._guarded(
                lambda start=start, end=end: collection.upsert(
                    ids=ids[start:end],
                    embeddings=vectors[start:end],
                    documents=None if documents is None else documents[start:end],
                    metadatas=metadatas[start:end],
                )
            )

    def search_chunks(self, vector: np.ndarray, k: int) -> list[tuple[str, float]]:
        """The `k` live chunks whose vectors are nearest to a query vector, with their cosine
        similarity, best first."""
        # Chroma returns fewer hits when it holds fewer; counting first would cost more than
        # the search. Ids only: the caller reads the few chunks it keeps.
        result = self._guarded(
            lambda: self._collection.query(
                query_embeddings=[vector], n_results=k, include=["distances"]
            )
        )
        hits = [
            (chunk_id, 1.0 - distance)
            for chunk_id, distance in zip(result["ids"][0], result["distances"][0], strict=True)
        ]
        return hits if self.live is None else [hit for hit in hits if hit[0] in self.live]

    def passages_of(self, chunk_ids: Sequence[str]) -> dict[str, ChunkPassages]:
        """These chunks' passages (sentence spans, sentence and window vectors), by chunk id;
        chunks without a passage record are left out."""
        with self._cache_lock:
            found = {c: self._passage_cache[c] for c in chunk_ids if c in self._passage_cache}
            for chunk_id in found:
                self._passage_cache.move_to_end(chunk_id)
        missing = list(dict.fromkeys(c for c in chunk_ids if c not in found))
        if not missing:
            return found
        read = self.replica.get(missing) if self.replica is not None else {}
        if len(read) < len(missing):
            lacking = [chunk_id for chunk_id in missing if chunk_id not in read]
            read |= {
                chunk_id: unpack_passages(metadata) for chunk_id, metadata in self._packed(lacking)
            }
        with self._cache_lock:
            self._passage_cache.update(read)
            while len(self._passage_cache) > _PASSAGE_CACHE:
                self._passage_cache.popitem(last=False)
        return found | read

    def replica_rows(self, chunk_ids: Sequence[str]) -> Iterator[ReplicaRow]:
        """(chunk id, packed passages, text, metadata) of these chunks, a page at a time (what
        a local copy is filled from); chunks lacking either record are left out."""
        for batch in self._batches(chunk_ids):
            records = dict(self._records(batch))
            for chunk_id, packed in self._packed(batch):
                if chunk_id in records:
                    yield (chunk_id, packed, *records[chunk_id])

    def _packed(self, chunk_ids: list[str]) -> Iterator[tuple[str, dict[str, Any]]]:
        page = self._guarded(lambda: self._passages.get(ids=chunk_ids, include=["metadatas"]))
        yield from zip(page["ids"], page["metadatas"], strict=True)

    def compatibility_problem(self) -> StoreError | None:
        """Why this store cannot be used with the configured embedder, or None."""
        metadata = self._collection.metadata or {}
        if metadata.get("format") != INDEX_FORMAT:
            return OutdatedIndexError(_rebuild_hint(self.name, "was built by an older Citebot"))
        built_with = metadata.get("embedder")
        if built_with != self._embedder_identity:
            return EmbedderMismatchError(
                f"the index {self.name!r} was built with {built_with}, but the configured "
                f"embedder is {self._embedder_identity}; rebuild it with "
                "`citebot index --rebuild PATH` (or configure the original model)"
            )
        return None

    def _check_compatible(self) -> None:
        problem = self.compatibility_problem()
        if problem is not None:
            raise problem


def _rebuild_hint(name: str, what: str) -> str:
    return f"the index {name!r} {what}; rebuild it with `citebot index --rebuild PATH`"


def _with_stored(stored: StoredArticle, present: int) -> StoredArticle:
    return StoredArticle(
        stored.content_hash,
        stored.expected_chunks,
        present,
        stored.path,
        stored.chunk_ids,
        stored.passages,
    )


def _packed(version: ArticleVersion) -> list[dict[str, Any]]:
    """Each chunk's passages of a version, packed (`index.passage_codec`), in chunk order."""
    rows: dict[str, list[int]] = {chunk.id: [] for chunk in version.chunks}
    for n, passage in enumerate(version.passages):
        rows[passage.chunk_id].append(n)
    return [
        pack_passages([version.passages[n] for n in own], version.passage_vectors[own])
        for own in rows.values()
    ]


def _manifest_metadata(article: Article, passages: int) -> dict[str, Any]:
    return {
        "content_hash": article.content_hash,
        "path": str(article.path),
        "title": article.title,
        "passages": passages,
    }


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
    metadata = {key: "" if value is None else value for key, value in metadata.items()}
    # Tagged once here, so no reader tags the corpus to build its alias table.
    metadata["names"] = name_mentions(f"{metadata['title']}\n{chunk.text}").to_text()
    return metadata


def _stored_mentions(metadata: dict[str, Any], text: str) -> NameMentions:
    """The names stored with a chunk, or those of its text when none (or unreadable) are."""
    with suppress(KeyError, ValueError):
        return NameMentions.from_text(str(metadata["names"]))
    return name_mentions(text)


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
