"""A corpus: articles on disk, their chunks in a store, and the embedder that indexed them.

A corpus is one logical collection. Readers use the physical version its live pointer names
(`index.coordination`); a writer holds the lease (and, embedded, the data directory's file
lock), updates the live version in place or, for a full rebuild, builds `<name>--g<N>` beside
it, and publishes a new generation when it is done. BM25 is cached in the data directory per
physical version and generation, and brought up to date from the chunk texts in Chroma: only
chunks the last cache lacks are read and tokenized. The live chunks' passages are copied to the
data directory the same way (`index.passage_replica`), so a question reads them locally.
"""

from __future__ import annotations

import logging
import re
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING

from index.chroma import ChromaConnection
from index.chunking import ChunkingConfig
from index.coordination import LivePointer, MetaStore, WriterLease, published_here, writer_lock
from index.embedding import Embedder
from index.lexical import LexicalIndex
from index.passage_replica import PassageReplica, replica_path
from index.reranking import Reranker
from index.retrieval import RetrievalConfig, Retriever
from index.store import (
    INDEX_FORMAT,
    ChunkStore,
    EmbedderMismatchError,
    IndexMissingError,
    OutdatedIndexError,
    StoreError,
)
from index.store_errors import StoreDamagedError

if TYPE_CHECKING:
    from index.indexer import IndexPlan, IndexProgress, IndexReport

log = logging.getLogger(__name__)


class Corpus:
    """Indexes folders of articles into one collection and retrieves from it."""

    def __init__(
        self,
        connection: ChromaConnection,
        collection: str,
        embedder: Embedder,
        chunking: ChunkingConfig,
    ) -> None:
        self._connection = connection
        self.collection = collection
        self.embedder = embedder
        self._chunking = chunking
        self._meta = MetaStore(connection)

    def generation(self) -> int:
        """The collection's published generation (0 before any run): one `get` by id."""
        return self._meta.pointer(self.collection).generation

    def store(self) -> ChunkStore:
        """The live physical version (or, before any run, the collection's own name, where an
        index of an older Citebot would be)."""
        return self._store_of(self._pointer())

    def _pointer(self) -> LivePointer:
        """The live pointer; an embedded client reopens when another process published since
        it last looked (its vector indexes do not see another process's writes)."""
        connection = self._connection
        was_open = connection.is_open
        pointer = self._meta.pointer(self.collection)
        seen = connection.seen_generations.get(self.collection)
        if (
            connection.embedded
            and was_open
            and seen != pointer.generation
            and not published_here(pointer)
        ):
            connection.reopen()
        connection.seen_generations[self.collection] = pointer.generation
        return pointer

    def _store_of(self, pointer: LivePointer) -> ChunkStore:
        return ChunkStore(
            self._connection, pointer.physical or self.collection, self.embedder.identity
        )

    @contextmanager
    def writer(self, *, set_aside_damaged: bool = False) -> Iterator[WriterLease]:
        """Hold the right to write this collection: the lease in Chroma, and in embedded mode
        the data directory's file lock too. Raises `IndexBusyError` when another writer has it.

        `set_aside_damaged` (a rebuild): a damaged embedded store is moved aside first, so the
        rebuild starts from an empty one.
        """
        with ExitStack() as stack:
            if self._connection.embedded:
                with self._connection.guard():
                    stack.enter_context(writer_lock(self._connection.data_dir))
                self._connection.allow_new_store()
                if set_aside_damaged:
                    self._set_aside_if_damaged()
            lease = stack.enter_context(
                WriterLease(self._meta, self.collection, self._connection.lease_seconds)
            )
            yield lease

    def sync(
        self,
        paths: Sequence[Path],
        *,
        rebuild: bool = False,
        rebuild_if_incompatible: bool = False,
        on_plan: Callable[[IndexPlan], None] | None = None,
        on_progress: Callable[[IndexProgress], None] | None = None,
    ) -> IndexReport:
        """Bring the collection in line with the articles under `paths`, as the only writer.

        A full rebuild (asked for, the first run, or an incompatible index when
        `rebuild_if_incompatible`) builds a new physical version and switches readers to it
        only when it is complete; until then they keep reading the old one.
        """
        # Imported here: reading, chunking and indexing articles (their parsers, the encoding
        # detector) is a writer's work, not part of answering a question.
        from index.articles import load_articles
        from index.chunking import Chunker
        from index.indexer import Indexer, plan_index

        with self.writer(set_aside_damaged=rebuild) as lease:
            pointer = self._pointer()
            live = self._store_of(pointer)
            problem = self._problem(live)
            full = (
                rebuild
                or isinstance(problem, IndexMissingError)
                or (problem is not None and rebuild_if_incompatible)
            )
            if problem is not None and not full:
                raise problem
            self._drop_partial_builds(keep=live.name)
            loaded = load_articles(paths)
            if full:
                target = ChunkStore(
                    self._connection,
                    f"{self.collection}--g{pointer.generation + 1}",
                    self.embedder.identity,
                )
                target.open_for_writing()
                plan = plan_index(loaded, None, paths)
            else:
                target = live
                target.open_for_writing()
                plan = plan_index(loaded, target, paths)
            if on_plan:
                on_plan(plan)
            chunker = Chunker(self.embedder.count_tokens, self.embedder.max_tokens, self._chunking)
            indexer = Indexer(target, self.embedder, chunker)
            report = indexer.run(plan, loaded.failures, on_progress)
            report.notes = loaded.notes
            if full or plan.changes:
                lease.check()
                generation = pointer.generation + 1
                self._lexical_index(target, generation)  # cached for this host's readers
                self._meta.publish(self.collection, target.name, generation)
                self._connection.seen_generations[self.collection] = generation
                if full:
                    live.drop()
                report.repaired = indexer.collect_garbage(plan)
            report.chunks_total = target.count()
        return report

    def _set_aside_if_damaged(self) -> None:
        """Read the live version through; if the files are damaged, rename the embedded
        store's folder to `chroma.broken-<UTC time>` (kept for inspection) and start afresh."""
        try:
            store = self._store_of(self._pointer())
            if self._problem(store) is None:
                store.count()
                store.manifests()
        except StoreDamagedError as error:
            chroma_dir = self._connection.chroma_dir
            moment = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
            broken = chroma_dir.with_name(f"{chroma_dir.name}.broken-{moment}")
            log.warning("%s; moving it to %s", error, broken)
            self._connection.reopen()
            with self._connection.guard():
                self._connection.chroma_dir.rename(broken)
            self._connection.seen_generations.clear()

    def _problem(self, store: ChunkStore) -> StoreError | None:
        """Why the store cannot be updated in place (missing or incompatible), or None."""
        try:
            store.open_for_reading()
        except (IndexMissingError, OutdatedIndexError, EmbedderMismatchError) as error:
            return error
        return None

    def _drop_partial_builds(self, keep: str) -> None:
        """Delete what a killed rebuild left: physical versions no pointer names (the caller
        holds the lease, so no rebuild is running)."""
        pattern = re.compile(rf"^({re.escape(self.collection)}--g\d+)(\.passages|\.articles)?$")
        client = self._connection.client
        with self._connection.guard():
            names = [getattr(c, "name", c) for c in client.list_collections()]
        partial = {match.group(1) for match in map(pattern.match, names) if match} - {keep}
        for name in sorted(partial):
            log.info("removing the unfinished rebuild %s", name)
            ChunkStore(self._connection, name, self.embedder.identity).drop()

    def counts(self) -> tuple[int, int]:
        """(articles, chunks) readers see; raises the store's errors when it cannot be read."""
        store = self.store()
        store.open_for_reading()
        manifests = store.manifests()
        return len(manifests), sum(m.expected_chunks for m in manifests.values())

    def retriever(self, config: RetrievalConfig, *, reranker: Reranker | None = None) -> Retriever:
        """A retriever over the live version as it is now; fails clearly when it is missing or
        mismatched. It accepts only chunks of live article versions."""
        pointer = self._pointer()
        store = self._store_of(pointer)
        store.open_for_reading()
        lexical = self._lexical_index(store, pointer.generation)
        store.live = frozenset(lexical.chunk_ids)
        store.replica = self._passage_replica(store)
        return Retriever(self.embedder, store, lexical, config, reranker=reranker)

    def _passage_replica(self, store: ChunkStore) -> PassageReplica | None:
        """This host's copy of the live chunks' passages, brought up to date from Chroma (only
        chunks it lacks are read); None when the data directory cannot hold it."""
        path = replica_path(
            self._connection.data_dir / "passages",
            self.collection,
            self.embedder.identity,
            INDEX_FORMAT,
        )
        replica = PassageReplica.shared(path)
        with suppress(OSError):  # copies another embedder or format wrote
            for other in path.parent.iterdir():
                if not other.name.startswith(path.name):
                    other.unlink(missing_ok=True)
        if replica is not None and store.live is not None:
            replica.fill(sorted(store.live), store.replica_rows)
        return replica

    def _lexical_folder(self, physical: str, generation: int) -> Path:
        return self._connection.data_dir / "lexical" / self.collection / f"{physical}-g{generation}"

    def _lexical_index(self, store: ChunkStore, generation: int) -> LexicalIndex:
        """BM25 over the live chunks: the cached one when it matches them; else this host's
        cache of an earlier generation brought up to date (only chunks it lacks are read from
        Chroma and tokenized), or one built from the chunk texts in Chroma; cached, and older
        generations' caches removed."""
        live = store.live_versions()
        folder = self._lexical_folder(store.name, generation)
        saved = LexicalIndex.load(folder)
        if saved is not None and not saved.missing(live) and len(saved.chunk_ids) == len(live):
            return saved
        base = saved or self._earlier_lexical_index(folder) or LexicalIndex.build([])
        lacking = base.missing(live)
        # Streamed: the texts are tokenized a page at a time and not kept. A chunk a manifest
        # names but Chroma lacks (a damaged store) is left out.
        built = base.updated(live, store.lexical_sources({c: live[c] for c in lacking}))
        try:
            built.save(folder)
            for other in folder.parent.iterdir():
                if other != folder:
                    shutil.rmtree(other, ignore_errors=True)
        except OSError as error:  # a cache only: a read-only data directory costs time
            log.warning("could not cache the BM25 index in %s: %s", folder, error)
        return built

    def _earlier_lexical_index(self, folder: Path) -> LexicalIndex | None:
        """The newest readable cache beside `folder` (an earlier generation's, or that of the
        version a rebuild replaced: chunks are checked by their article version, not where
        they were stored)."""
        with suppress(OSError):
            others = sorted(
                (path for path in folder.parent.iterdir() if path != folder),
                key=lambda path: path.stat().st_mtime,
                reverse=True,
            )
            for other in others:
                if (index := LexicalIndex.load(other)) is not None:
                    return index
        return None
