"""A corpus: articles on disk, their chunks in a store, and the embedder that indexed them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from index.articles import load_articles
from index.chunking import Chunker, ChunkingConfig
from index.embedding import Embedder
from index.indexer import Indexer, IndexPlan, IndexProgress, IndexReport, plan_index
from index.lexical import LexicalIndex, fingerprint
from index.reranking import Reranker
from index.retrieval import RERANK_POOL, RetrievalMode, Retriever
from index.store import (
    ChromaConnection,
    ChunkStore,
    IndexMissingError,
    write_stamp,
    writer_lock,
)


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

    def store(self) -> ChunkStore:
        """The collection, through a client that is reopened if another process changed it."""
        self._connection.refresh()
        return ChunkStore(self._connection.client, self.collection, self.embedder.identity)

    def sync(
        self,
        paths: Sequence[Path],
        *,
        rebuild: bool = False,
        on_plan: Callable[[IndexPlan], None] | None = None,
        on_progress: Callable[[IndexProgress], None] | None = None,
    ) -> IndexReport:
        """Bring the collection in line with the articles under `paths`, under the writer lock."""
        with writer_lock(self._connection.data_dir):
            store = self.store()
            if rebuild:
                store.drop()
            store.open_for_writing()
            loaded = load_articles(paths)
            plan = plan_index(loaded.articles, store)
            if on_plan:
                on_plan(plan)
            chunker = Chunker(self.embedder.count_tokens, self.embedder.max_tokens, self._chunking)
            report = Indexer(store, self.embedder, chunker).run(plan, loaded.failures, on_progress)
            report.notes = loaded.notes
            LexicalIndex.build(*store.texts()).save(self._lexical_dir)
            write_stamp(
                self._connection.data_dir, {"collection": self.collection, **report.summary()}
            )
        return report

    def plan(self, paths: Sequence[Path]) -> IndexPlan:
        """What `sync` would add, update and remove, without embedding or writing anything."""
        store = self.store()
        try:
            store.open_for_reading()
        except IndexMissingError:
            return plan_index(load_articles(paths).articles, None)
        return plan_index(load_articles(paths).articles, store)

    def retriever(
        self,
        mode: RetrievalMode = "hybrid",
        *,
        reranker: Reranker | None = None,
        rerank_candidates: int = RERANK_POOL,
        article_diversity: float = 0.25,
    ) -> Retriever:
        """A retriever over the collection; fails clearly when it is missing or mismatched."""
        store = self.store()
        store.open_for_reading()
        return Retriever(
            self.embedder,
            store,
            self._lexical_index(store),
            mode,
            reranker=reranker,
            rerank_candidates=rerank_candidates,
            article_diversity=article_diversity,
        )

    @property
    def _lexical_dir(self) -> Path:
        return self._connection.data_dir / "lexical" / self.collection

    def _lexical_index(self, store: ChunkStore) -> LexicalIndex:
        """The saved BM25 index if it matches the store's chunks, else one built now."""
        saved = LexicalIndex.load(self._lexical_dir)
        if saved is not None and saved.fingerprint == fingerprint(store.chunk_ids()):
            return saved
        return LexicalIndex.build(*store.texts())
