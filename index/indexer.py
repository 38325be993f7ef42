"""Incremental indexing: embed only new or changed articles, drop the chunks of removed ones."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from index.articles import Article, LoadFailure
from index.chunking import Chunk, Chunker
from index.embedding import Embedder
from index.passages import embed_articles
from index.store import ChunkStore

# Articles are embedded in groups of about this many chunks, so the embedder gets full batches.
_EMBED_GROUP_CHUNKS = 32


@dataclass(frozen=True)
class IndexPlan:
    """What an index run will do, decided before any embedding."""

    added: list[Article]
    updated: list[Article]
    removed: list[str]
    unchanged: list[str]

    @property
    def to_embed(self) -> list[Article]:
        return [*self.added, *self.updated]


@dataclass
class IndexProgress:
    """Progress of a run, reported after every stored article."""

    articles_done: int
    articles_total: int
    chunks_embedded: int


@dataclass
class IndexReport:
    """The outcome of an index run, as printed to the user."""

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    failures: list[LoadFailure] = field(default_factory=list)
    chunks_embedded: int = 0
    chunks_total: int = 0
    seconds: float = 0.0

    def summary(self) -> dict[str, object]:
        return {
            "added": len(self.added),
            "updated": len(self.updated),
            "removed": len(self.removed),
            "unchanged": len(self.unchanged),
            "failed": len(self.failures),
            "chunks_embedded": self.chunks_embedded,
            "chunks_total": self.chunks_total,
            "seconds": round(self.seconds, 2),
        }


def plan_index(articles: Sequence[Article], store: ChunkStore | None) -> IndexPlan:
    """Compare articles with the store by content hash; a partly stored one counts as changed.

    With no store yet, every article is new.
    """
    stored = store.stored_articles() if store is not None else {}
    added, updated, unchanged = [], [], []
    for article in articles:
        previous = stored.get(article.id)
        if previous is None:
            added.append(article)
        elif previous.content_hash != article.content_hash or not previous.complete:
            updated.append(article)
        else:
            unchanged.append(article.id)
    current = {article.id for article in articles}
    removed = sorted(article_id for article_id in stored if article_id not in current)
    return IndexPlan(added=added, updated=updated, removed=removed, unchanged=unchanged)


class Indexer:
    """Brings a store in line with a set of articles, chunking and embedding what changed."""

    def __init__(self, store: ChunkStore, embedder: Embedder, chunker: Chunker) -> None:
        self._store = store
        self._embedder = embedder
        self._chunker = chunker

    def run(
        self,
        plan: IndexPlan,
        failures: Sequence[LoadFailure] = (),
        on_progress: Callable[[IndexProgress], None] | None = None,
    ) -> IndexReport:
        """Apply a plan: delete removed and stale chunks, embed and store the new ones."""
        started = time.perf_counter()
        report = IndexReport(
            added=[a.id for a in plan.added],
            updated=[a.id for a in plan.updated],
            removed=list(plan.removed),
            unchanged=list(plan.unchanged),
            failures=list(failures),
        )
        for article_id in plan.removed:
            self._store.delete_article(article_id)
        progress = IndexProgress(0, len(plan.to_embed), 0)
        for group in self._groups(plan.to_embed):
            for (article, chunks), embedded in zip(
                group, embed_articles(self._embedder, group), strict=True
            ):
                self._store.replace_article(
                    article,
                    chunks,
                    embedded.chunk_vectors,
                    embedded.records,
                    embedded.passage_vectors,
                )
                progress.articles_done += 1
                progress.chunks_embedded += len(chunks)
                if on_progress:
                    on_progress(progress)
        report.chunks_embedded = progress.chunks_embedded
        report.chunks_total = self._store.count()
        report.seconds = time.perf_counter() - started
        return report

    def _groups(self, articles: Sequence[Article]) -> list[list[tuple[Article, list[Chunk]]]]:
        """Chunk every article and group them so each embedding call gets a full batch."""
        groups: list[list[tuple[Article, list[Chunk]]]] = [[]]
        size = 0
        for article in articles:
            chunks = self._chunker.split(article.id, article.text, article.title)
            if size and size + len(chunks) > _EMBED_GROUP_CHUNKS:
                groups.append([])
                size = 0
            groups[-1].append((article, chunks))
            size += len(chunks)
        return [group for group in groups if group]
