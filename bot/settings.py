"""Citebot's configuration: one typed object read from the environment and `.env`."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.answer.abstention import AbstentionPolicy, calibrated_policy
from bot.answer.llm.client import ChatEndpoint
from index.chroma import ChromaServer
from index.chunking import ChunkingConfig
from index.embedding import BUNDLED_MODEL, Backend, EmbedderSpec
from index.errors import ConfigError
from index.onnx_model import Runtime
from index.redaction import redact_url, url_secrets
from index.remote_embedding import EmbeddingEndpoint
from index.retrieval import RERANK_POOL, RetrievalConfig


class Settings(BaseSettings):
    """Every knob Citebot has; values come from `CITEBOT_*` variables or `.env`."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", populate_by_name=True
    )

    data_dir: Path = Field(Path("data"), alias="CITEBOT_DATA_DIR")
    articles_dir: Path = Field(Path("articles"), alias="CITEBOT_ARTICLES_DIR")
    collection: str = Field("articles", alias="CITEBOT_COLLECTION")

    # Chroma: embedded under data_dir unless a server URL is set (the scale-out path).
    chroma_url: str | None = Field(None, alias="CITEBOT_CHROMA_URL")
    chroma_token: SecretStr | None = Field(None, alias="CITEBOT_CHROMA_TOKEN")
    chroma_database: str = Field("default_database", alias="CITEBOT_CHROMA_DATABASE")
    index_lease_seconds: float = Field(60.0, ge=5, le=3600, alias="CITEBOT_INDEX_LEASE_SECONDS")

    embedding_backend: Backend = Field("auto", alias="CITEBOT_EMBEDDING_BACKEND")
    embedding_model: str = Field(BUNDLED_MODEL, alias="CITEBOT_EMBEDDING_MODEL")
    query_prompt: str | None = Field(None, alias="CITEBOT_QUERY_PROMPT")
    document_prompt: str | None = Field(None, alias="CITEBOT_DOCUMENT_PROMPT")
    device: str | None = Field(None, alias="CITEBOT_DEVICE")
    # What runs the bundled model's graph: OpenVINO (bfloat16) where the CPU computes bfloat16
    # natively, else onnxruntime.
    embedding_runtime: Runtime = Field("auto", alias="CITEBOT_EMBEDDING_RUNTIME")
    # The `http` backend: an OpenAI-compatible /v1/embeddings endpoint serving the model.
    embedding_url: str | None = Field(None, alias="CITEBOT_EMBEDDING_URL", validate_default=True)
    embedding_key: SecretStr | None = Field(None, alias="CITEBOT_EMBEDDING_KEY")
    embedding_max_tokens: int = Field(512, ge=16, alias="CITEBOT_EMBEDDING_MAX_TOKENS")
    embedding_batch_size: int = Field(32, ge=1, alias="CITEBOT_EMBEDDING_BATCH_SIZE")
    embedding_batch_tokens: int = Field(16384, ge=512, alias="CITEBOT_EMBEDDING_BATCH_TOKENS")
    embedding_timeout_seconds: float = Field(30.0, gt=0, alias="CITEBOT_EMBEDDING_TIMEOUT_SECONDS")
    embedding_max_retries: int = Field(3, ge=0, le=10, alias="CITEBOT_EMBEDDING_MAX_RETRIES")

    chunk_tokens: int = Field(512, ge=32, alias="CITEBOT_CHUNK_TOKENS")
    chunk_overlap_tokens: int = Field(64, ge=0, alias="CITEBOT_CHUNK_OVERLAP_TOKENS")

    retrieval: Literal["dense", "bm25", "hybrid"] = Field("hybrid", alias="CITEBOT_RETRIEVAL")
    top_k: int = Field(5, ge=1, le=50, alias="CITEBOT_TOP_K")
    reranker: str | None = Field(None, alias="CITEBOT_RERANKER")
    rerank_candidates: int = Field(
        RERANK_POOL, ge=1, le=RERANK_POOL, alias="CITEBOT_RERANK_CANDIDATES"
    )
    article_diversity: float = Field(0.25, ge=0, le=5, alias="CITEBOT_ARTICLE_DIVERSITY")
    min_score: float | None = Field(None, alias="CITEBOT_MIN_SCORE")
    min_margin: float | None = Field(None, alias="CITEBOT_MIN_MARGIN")
    max_question_chars: int = Field(1000, ge=10, alias="CITEBOT_MAX_QUESTION_CHARS")

    # The Discord bot (`citebot bot`).
    discord_token: SecretStr | None = Field(None, alias="DISCORD_TOKEN")
    channels_file: Path | None = Field(None, alias="CITEBOT_CHANNELS_FILE")
    ask_cooldown_seconds: float = Field(10.0, ge=0, alias="CITEBOT_ASK_COOLDOWN_SECONDS")
    max_concurrent_questions: int = Field(2, ge=1, alias="CITEBOT_MAX_CONCURRENT_QUESTIONS")
    # Questions beyond those being answered that wait their turn; more are turned away at once.
    max_queued_questions: int = Field(20, ge=0, alias="CITEBOT_MAX_QUEUED_QUESTIONS")

    # Generated answers: any OpenAI-compatible chat endpoint; extractive answers without one.
    llm_base_url: str | None = Field(None, alias="LLM_BASE_URL")
    llm_model: str | None = Field(None, alias="LLM_MODEL", validate_default=True)
    llm_api_key: SecretStr | None = Field(None, alias="LLM_API_KEY")
    llm_timeout_seconds: float = Field(60.0, gt=0, alias="LLM_TIMEOUT_SECONDS")
    llm_max_retries: int = Field(2, ge=0, le=10, alias="LLM_MAX_RETRIES")
    llm_temperature: float = Field(0.1, ge=0, le=2, alias="LLM_TEMPERATURE")
    llm_rewrite_queries: bool = Field(True, alias="LLM_REWRITE_QUERIES")

    @field_validator("chroma_url")
    @classmethod
    def _chroma_url_is_http(cls, url: str | None) -> str | None:
        """The server is reached over HTTP(S); a typo is best caught at start."""
        if url and not url.startswith(("http://", "https://")):
            raise ValueError("CITEBOT_CHROMA_URL must start with http:// or https://")
        return url or None

    @field_validator("llm_base_url")
    @classmethod
    def _llm_url_is_http(cls, url: str | None) -> str | None:
        """The endpoint is reached over HTTP(S); anything else is a typo best caught at start."""
        if url and not url.startswith(("http://", "https://")):
            raise ValueError("LLM_BASE_URL must start with http:// or https://")
        return url or None

    @field_validator("embedding_url")
    @classmethod
    def _embedding_url_is_http(cls, url: str | None, info: ValidationInfo) -> str | None:
        """The `http` backend needs an HTTP(S) endpoint; say so at start, not at the first text."""
        if url and not url.startswith(("http://", "https://")):
            raise ValueError("CITEBOT_EMBEDDING_URL must start with http:// or https://")
        if info.data.get("embedding_backend") == "http" and not url:
            raise ValueError("CITEBOT_EMBEDDING_BACKEND=http needs CITEBOT_EMBEDDING_URL")
        return url or None

    @field_validator("llm_model")
    @classmethod
    def _llm_needs_a_model(cls, model: str | None, info: ValidationInfo) -> str | None:
        """An endpoint without a model cannot be asked anything: say so at start (a field
        validator, so the error shows this field alone and never the API key)."""
        if info.data.get("llm_base_url") and not model:
            raise ValueError("LLM_MODEL must name the model to use with LLM_BASE_URL")
        return model

    @property
    def cache_dir(self) -> Path:
        """What a process rebuilds when it is gone: converted models, background vectors, the
        dictionary's table."""
        return self.data_dir / "cache"

    @cached_property
    def embedder_spec(self) -> EmbedderSpec:
        """What embedder to build, as the index layer understands it."""
        return EmbedderSpec(
            backend=self.embedding_backend,
            model=self.embedding_model,
            query_prompt=self.query_prompt,
            document_prompt=self.document_prompt,
            device=self.device,
            cache_dir=self.cache_dir,
            endpoint=self._embedding_endpoint(),
            runtime=self.embedding_runtime,
        )

    def _embedding_endpoint(self) -> EmbeddingEndpoint | None:
        """The embeddings endpoint of the `http` backend; None for in-process models."""
        if self.embedding_backend != "http" or not self.embedding_url:
            return None
        return EmbeddingEndpoint(
            url=self.embedding_url,
            api_key=self.embedding_key,
            max_tokens=self.embedding_max_tokens,
            batch_size=self.embedding_batch_size,
            batch_tokens=self.embedding_batch_tokens,
            timeout_seconds=self.embedding_timeout_seconds,
            max_retries=self.embedding_max_retries,
        )

    @cached_property
    def chroma_server(self) -> ChromaServer | None:
        """The Chroma server to use, or None for the embedded store under `data_dir`."""
        if not self.chroma_url:
            return None
        token = (
            self.chroma_token
            if self.chroma_token and self.chroma_token.get_secret_value()
            else None
        )
        return ChromaServer(url=self.chroma_url, database=self.chroma_database, token=token)

    @property
    def llm_endpoint(self) -> ChatEndpoint | None:
        """The chat endpoint generated answers come from, or None for extractive answers."""
        if not self.llm_base_url or not self.llm_model:
            return None
        return ChatEndpoint(
            base_url=self.llm_base_url,
            model=self.llm_model,
            api_key=self.llm_api_key,
            timeout_seconds=self.llm_timeout_seconds,
            max_retries=self.llm_max_retries,
            temperature=self.llm_temperature,
        )

    def abstention(self, embedder_identity: str) -> AbstentionPolicy | None:
        """The calibrated abstention policy for this embedder, with any configured overrides."""
        policy = calibrated_policy(embedder_identity)
        if self.min_score is None and self.min_margin is None:
            return policy
        base = policy or AbstentionPolicy(min_top_score=0.0, min_margin=0.0, min_overlap=0.0)
        return dataclasses.replace(
            base,
            min_top_score=base.min_top_score if self.min_score is None else self.min_score,
            min_margin=base.min_margin if self.min_margin is None else self.min_margin,
        )

    def __repr_args__(self) -> Iterator[tuple[str | None, object]]:
        """Fields for `repr`, URLs with their credentials masked (keys are SecretStr)."""
        for name, value in super().__repr_args__():
            yield (
                name,
                redact_url(value) if isinstance(value, str) and url_secrets(value) else value,
            )

    def secrets(self) -> list[str]:
        """Every secret configured (keys, tokens, passwords in URLs), so logs can mask them."""
        values: list[str] = []
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                values.append(value.get_secret_value())
            elif isinstance(value, str):
                values += url_secrets(value)
        return values

    @cached_property
    def chunking(self) -> ChunkingConfig:
        """How articles are cut into chunks."""
        return ChunkingConfig(
            max_tokens=self.chunk_tokens, overlap_tokens=self.chunk_overlap_tokens
        )

    @cached_property
    def retrieval_config(self) -> RetrievalConfig:
        """How retrieval ranks chunks: mode, reranked pool and per-article diversity."""
        return RetrievalConfig(
            mode=self.retrieval,
            rerank_candidates=self.rerank_candidates,
            article_diversity=self.article_diversity,
        )


def load_settings() -> Settings:
    """The settings from the environment and `.env`; a bad value is a `ConfigError` naming the
    variable (never its value, which may be a secret)."""
    try:
        return Settings()
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in problem['loc']) or 'settings'}: {problem['msg']}"
            for problem in error.errors()
        )
        raise ConfigError(f"invalid settings: {problems}") from None
