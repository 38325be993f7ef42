"""Incremental indexing: embed only new or changed articles, retire removed ones, and repair
what a killed run left behind.

An article's new version gets new chunk ids (derived from its content hash), so it is written
beside the old one; its manifest, written last, makes it live; the old version is deleted only
after the run has published its generation. A reader therefore sees each article whole, old or
new. Every run also reconciles the store with the manifests: chunks or passages no manifest
names are deleted, and an article whose chunks or passages are missing is embedded again.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from index.articles import Article, LoadFailure, LoadNote, LoadResult
from index.chunking import Chunk, Chunker
from index.embedding import Embedder
from index.passages import embed_articles
from index.store import ArticleVersion, ChunkStore, StoredArticle

# Articles are embedded in groups of about this many chunks, so the embedder gets full batches.
_EMBED_GROUP_CHUNKS = 32


@dataclass(frozen=True)
class IndexPlan:
    """What an index run will do, decided before any embedding.

    `unchanged` includes `moved` (same content, new path: only the path is rewritten); `kept`
    are articles whose file failed to load this time, so their last good version stays.
    """

    added: list[Article]
    updated: list[Article]
    removed: list[str]
    unchanged: list[str]
    moved: list[Article] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    previous: dict[str, StoredArticle] = field(default_factory=dict)
    orphan_chunks: list[str] = field(default_factory=list)
    orphan_passages: list[str] = field(default_factory=list)

    @property
    def to_embed(self) -> list[Article]:
        return [*self.added, *self.updated]

    @property
    def changes(self) -> bool:
        """Whether the run writes or deletes anything (a no-op run publishes nothing)."""
        return bool(
            self.to_embed
            or self.removed
            or self.moved
            or self.orphan_chunks
            or self.orphan_passages
        )


@dataclass
class IndexProgress:
    """Progress of a run, reported after every stored article."""

    articles_done: int
    articles_total: int
    chunks_embedded: int


@dataclass(frozen=True)
class RunSummary:
    """The counts of an index run, as people are told them (and /status remembers them)."""

    added: int = 0
    updated: int = 0
    removed: int = 0
    unchanged: int = 0
    kept: int = 0
    moved: int = 0
    failed: int = 0
    repaired: int = 0
    chunks_embedded: int = 0
    chunks_total: int = 0
    seconds: float = 0.0


@dataclass
class IndexReport:
    """The outcome of an index run, as printed to the user."""

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    moved: list[str] = field(default_factory=list)
    failures: list[LoadFailure] = field(default_factory=list)
    notes: list[LoadNote] = field(default_factory=list)
    chunks_embedded: int = 0
    chunks_total: int = 0
    repaired: int = 0
    seconds: float = 0.0

    def summary(self) -> RunSummary:
        return RunSummary(
            added=len(self.added),
            updated=len(self.updated),
            removed=len(self.removed),
            unchanged=len(self.unchanged),
            kept=len(self.kept),
            moved=len(self.moved),
            failed=len(self.failures),
            repaired=self.repaired,
            chunks_embedded=self.chunks_embedded,
            chunks_total=self.chunks_total,
            seconds=round(self.seconds, 2),
        )


def plan_index(
    loaded: LoadResult | Sequence[Article],
    store: ChunkStore | None,
    roots: Sequence[Path] | None = None,
) -> IndexPlan:
    """Compare articles with the store's manifests, and find what a killed run left behind.

    Only stored articles under `roots` may be removed (all of them when `roots` is None), and
    one whose file failed to load this time is kept. With no store yet, every article is new.
    """
    articles, failures = (
        (loaded.articles, loaded.failures) if isinstance(loaded, LoadResult) else (loaded, [])
    )
    stored, incomplete, orphan_chunks, orphan_passages = (
        _reconcile(store) if store is not None else ({}, set(), [], [])
    )
    added, updated, unchanged, moved = [], [], [], []
    for article in articles:
        previous = stored.get(article.id)
        if previous is None:
            added.append(article)
        elif previous.content_hash != article.content_hash or article.id in incomplete:
            updated.append(article)
        else:
            unchanged.append(article.id)
            if previous.path != str(article.path):
                moved.append(article)
    current = {article.id for article in articles}
    failed = {_absolute(failure.path) for failure in failures}
    scope = [_absolute(root) for root in roots] if roots is not None else None
    removed, kept = [], []
    for article_id in sorted(stored.keys() - current):
        path = stored[article_id].path
        if scope is not None and not any(_under(path, root) for root in scope):
            continue
        (kept if path in failed else removed).append(article_id)
    return IndexPlan(
        added=added,
        updated=updated,
        removed=removed,
        unchanged=unchanged,
        moved=moved,
        kept=kept,
        previous=stored,
        orphan_chunks=orphan_chunks,
        orphan_passages=orphan_passages,
    )


def _reconcile(
    store: ChunkStore,
) -> tuple[dict[str, StoredArticle], set[str], list[str], list[str]]:
    """(manifests, incomplete article ids, orphan chunk ids, orphan passage ids).

    Chunk ids are read every run; passage records (one per chunk, under its id) only when their
    count disagrees with the manifests (a no-op run over many articles reads a count, not every
    record).
    """
    stored = store.manifests()
    owner = {chunk_id: a for a, manifest in stored.items() for chunk_id in manifest.chunk_ids}
    present = set(store.chunk_ids())
    orphan_chunks = sorted(present - owner.keys())
    incomplete = {owner[chunk_id] for chunk_id in owner.keys() - present}
    orphan_passages: list[str] = []
    expected = sum(manifest.passages for manifest in stored.values())
    if store.passage_count() != expected:
        found: Counter[str] = Counter()
        for chunk_id in store.passage_ids():
            if chunk_id in owner:
                found[owner[chunk_id]] += 1
            elif chunk_id not in present:
                orphan_passages.append(chunk_id)
        incomplete |= {a for a, manifest in stored.items() if found[a] != manifest.passages}
    return stored, incomplete, orphan_chunks, orphan_passages


def _absolute(path: Path | str) -> str:
    return os.path.abspath(path)


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


class Indexer:
    """Brings a store in line with a plan, chunking and embedding what changed."""

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
        """Apply a plan: retire removed articles, write the new versions, record moves.

        Nothing is deleted here: `collect_garbage` does that once the run is published.
        """
        started = time.perf_counter()
        report = IndexReport(
            added=[a.id for a in plan.added],
            updated=[a.id for a in plan.updated],
            removed=list(plan.removed),
            unchanged=list(plan.unchanged),
            kept=list(plan.kept),
            moved=[a.id for a in plan.moved],
            failures=list(failures),
        )
        self._store.retire(plan.removed)
        progress = IndexProgress(0, len(plan.to_embed), 0)
        # Each group is written to Chroma while the next one embeds; writes stay in order, and a
        # failed one stops the run at the next group (the pool waits for the last on any exit).
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="citebot-index-write") as pool:
            writing: tuple[Future[None], list[tuple[Article, list[Chunk]]]] | None = None
            for group in self._groups(plan.to_embed):
                versions = [
                    ArticleVersion(
                        article,
                        chunks,
                        embedded.chunk_vectors,
                        embedded.records,
                        embedded.passage_vectors,
                    )
                    for (article, chunks), embedded in zip(
                        group, embed_articles(self._embedder, group), strict=True
                    )
                ]
                if writing is not None:
                    self._written(*writing, progress, on_progress)
                writing = pool.submit(self._store.write_versions, versions), group
            if writing is not None:
                self._written(*writing, progress, on_progress)
        for article in plan.moved:
            self._store.move(article, plan.previous[article.id])
        report.chunks_embedded = progress.chunks_embedded
        report.seconds = time.perf_counter() - started
        return report

    @staticmethod
    def _written(
        write: Future[None],
        group: list[tuple[Article, list[Chunk]]],
        progress: IndexProgress,
        on_progress: Callable[[IndexProgress], None] | None,
    ) -> None:
        """Wait for a group's write (raising its error) and count its articles as done."""
        write.result()
        for _, chunks in group:
            progress.articles_done += 1
            progress.chunks_embedded += len(chunks)
            if on_progress:
                on_progress(progress)

    def collect_garbage(self, plan: IndexPlan) -> int:
        """Delete the old versions of updated and removed articles and every orphan; returns
        how many orphans (a killed run's leftovers) were removed."""
        live = set(self._store.live_chunk_ids())
        replaced = {
            chunk_id
            for article_id in [*(a.id for a in plan.updated), *plan.removed]
            if article_id in plan.previous
            for chunk_id in plan.previous[article_id].chunk_ids
        }
        self._store.delete_chunks(sorted((replaced | set(plan.orphan_chunks)) - live))
        self._store.delete_passages(plan.orphan_passages)
        return len(plan.orphan_chunks) + len(plan.orphan_passages)

    def _groups(self, articles: Sequence[Article]) -> list[list[tuple[Article, list[Chunk]]]]:
        """Chunk every article and group them so each embedding call gets a full batch."""
        groups: list[list[tuple[Article, list[Chunk]]]] = [[]]
        size = 0
        for article in articles:
            chunks = _versioned(
                article, self._chunker.split(article.id, article.text, article.title)
            )
            if size and size + len(chunks) > _EMBED_GROUP_CHUNKS:
                groups.append([])
                size = 0
            groups[-1].append((article, chunks))
            size += len(chunks)
        return [group for group in groups if group]


def _versioned(article: Article, chunks: list[Chunk]) -> list[Chunk]:
    """The chunks under ids of this version of the article, so a new version never overwrites
    the records of the old one that readers may still be using."""
    return [
        dataclasses.replace(
            chunk,
            id=hashlib.sha256(f"{article.content_hash}\0{chunk.id}".encode()).hexdigest()[:32],
        )
        for chunk in chunks
    ]
