"""The one surface both front ends use: it builds every part from the settings (embedder,
corpus, retriever, answer pipeline, condenser) and reports an index's status."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from bot.answer.conversation import LLMQueryCondenser, QueryCondenser, RecentQuestionsCondenser
from bot.answer.extractive import Quoter
from bot.answer.llm.client import ChatClient
from bot.answer.llm.rewrite import QueryRewriter
from bot.answer.pipeline import AnswerPipeline
from bot.settings import Settings, load_settings
from index import dictionary
from index.chroma import ChromaConnection
from index.corpus import Corpus
from index.embedding import Embedder, fallback_note, load_embedder
from index.redaction import install_log_redaction
from index.reranking import Reranker, load_reranker
from index.retrieval import Retriever
from index.store import StoreError

if TYPE_CHECKING:
    from bot.answer.llm.answerer import AnswerGenerator


@dataclass(frozen=True)
class IndexStatus:
    """What one collection's index holds as readers see it, and the embedder reading it.

    `problem` says why the counts are missing (the index cannot be read); `fallback` why the
    embedder is not the configured model, when it is not.
    """

    collection: str
    embedder: str
    fallback: str | None
    articles: int | None = None
    chunks: int | None = None
    generation: int | None = None
    problem: str | None = None


class Engine:
    """The configured Citebot: one embedder (loaded once) shared by every corpus it opens."""

    def __init__(self, settings: Settings, embedder: Embedder | None = None) -> None:
        self.settings = settings
        self._embedder = embedder
        dictionary.use_cache(settings.cache_dir)

    @classmethod
    def configured(cls) -> Engine:
        """The engine as the environment and `.env` configure it, its secrets (keys, tokens,
        passwords in URLs) masked in every log line from then on; a bad setting is a
        `ConfigError` that names the variable, never its value."""
        settings = load_settings()
        install_log_redaction(settings.secrets())
        return cls(settings)

    @cached_property
    def embedder(self) -> Embedder:
        return self._embedder or load_embedder(self.settings.embedder_spec)

    @cached_property
    def reranker(self) -> Reranker | None:
        """The configured cross-encoder; None when none is configured or it cannot load here."""
        return load_reranker(self.settings.reranker, self.settings.device)

    def retriever(self, corpus: Corpus | None = None) -> Retriever:
        """A retriever over a corpus (the configured collection by default) as configured:
        retrieval mode, reranker and per-article diversity."""
        return (corpus or self.corpus()).retriever(
            self.settings.retrieval_config, reranker=self.reranker
        )

    @cached_property
    def chat(self) -> ChatClient | None:
        """The language model generated answers come from; None without `LLM_BASE_URL`."""
        endpoint = self.settings.llm_endpoint
        return ChatClient(endpoint) if endpoint else None

    @cached_property
    def rewriter(self) -> QueryRewriter | None:
        """Writes questions in the articles' language for retrieval, with the language model
        (unless `LLM_REWRITE_QUERIES` is off); shared, so a follow-up's rewrite made while
        condensing it is reused."""
        if self.chat is None or not self.settings.llm_rewrite_queries:
            return None
        return QueryRewriter(self.chat, self.settings.max_question_chars)

    @property
    def answer_mode(self) -> str:
        """How questions are answered, for people: "extractive" or "LLM (model)"."""
        return f"LLM ({self.chat.model})" if self.chat else "extractive"

    @cached_property
    def connection(self) -> ChromaConnection:
        """The configured index location: the Chroma server, or the embedded store."""
        return self.connection_at(self.settings.data_dir)

    def connection_at(self, data_dir: Path) -> ChromaConnection:
        """A connection with this host's local files (BM25 cache, file lock) in `data_dir`."""
        settings = self.settings
        return ChromaConnection(data_dir, settings.chroma_server, settings.index_lease_seconds)

    def corpus(self, collection: str | None = None) -> Corpus:
        """The configured collection, or another one (evaluation sets, team channels)."""
        return Corpus(
            self.connection,
            collection or self.settings.collection,
            self.embedder,
            self.settings.chunking,
        )

    def status(self, collection: str | None = None) -> IndexStatus:
        """The index of a collection (the configured one by default) as `/status` and
        `citebot status` show it; a store that cannot be read is the status's `problem`."""
        name = collection or self.settings.collection
        identity = self.embedder.identity
        fallback = fallback_note(self.settings.embedder_spec, self.embedder)
        try:
            corpus = self.corpus(name)
            generation = corpus.generation()
            articles, chunks = corpus.counts()
        except StoreError as error:
            return IndexStatus(name, identity, fallback, problem=str(error))
        return IndexStatus(name, identity, fallback, articles, chunks, generation)

    def answerer(self, retriever: Retriever) -> AnswerPipeline:
        """The answer pipeline over a retriever, quoting every answer (what evaluation
        measures), with the abstention policy for this model.

        The caller passes the retriever so it can share it (the Discord bot's /search uses the
        same one, and its BM25 index is loaded once)."""
        return self._pipeline(retriever, None)

    def responder(self, retriever: Retriever) -> AnswerPipeline:
        """The answer pipeline front ends use: generated answers when a language model is
        configured (quotes when it fails; questions also searched for in the articles'
        language), else quoted ones."""
        if self.chat is None:
            return self._pipeline(retriever, None)
        # Imported only with a language model: the generator and its citation checks are
        # not part of quoting, and a quoted answer's start-up need not pay for them.
        from bot.answer.llm.answerer import AnswerGenerator

        return self._pipeline(retriever, AnswerGenerator(self.chat), self.rewriter)

    def _pipeline(
        self,
        retriever: Retriever,
        generator: AnswerGenerator | None,
        rewriter: QueryRewriter | None = None,
    ) -> AnswerPipeline:
        settings = self.settings
        return AnswerPipeline(
            retriever,
            Quoter(retriever),
            top_k=settings.top_k,
            abstention=settings.abstention(self.embedder.identity),
            max_question_chars=settings.max_question_chars,
            condenser=self.condenser(),
            generator=generator,
            rewriter=rewriter,
        )

    def condenser(self) -> QueryCondenser:
        """How thread follow-ups become standalone queries: by the language model when there
        is one, else by prepending the thread's questions."""
        recent = RecentQuestionsCondenser(self.settings.max_question_chars)
        if self.chat is None:
            return recent
        return LLMQueryCondenser(
            self.chat, recent, self.settings.max_question_chars, rewriter=self.rewriter
        )
