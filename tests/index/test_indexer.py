import numpy as np
import pytest

from index import indexer
from index.chunking import Chunk, ChunkingConfig
from index.corpus import Corpus
from index.passages import passage_records
from index.store import ChunkStore
from tests.helpers.chroma import connection as chroma_connection
from tests.helpers.settings import retrieval_config


def _chunk(text: str) -> Chunk:
    return Chunk("c1", "a.md", 0, 0, len(text), text, 10)


def test_a_chunk_is_found_by_its_sentences_and_adjacent_pairs():
    chunk = _chunk("馬祖有36個島嶼。氣候寒冷潮濕。冬季多霧。")
    records = passage_records(chunk)
    sentences = [r.text for r in records if r.kind == "sentence"]
    windows = [r.text for r in records if r.kind == "window"]
    assert sentences == ["馬祖有36個島嶼。", "氣候寒冷潮濕。", "冬季多霧。"]
    assert windows == ["馬祖有36個島嶼。氣候寒冷潮濕。", "氣候寒冷潮濕。冬季多霧。"]
    assert all(chunk.text[r.start : r.end] == r.text for r in records), "spans locate them"
    assert {r.chunk_id for r in records} == {"c1"}


def test_a_one_sentence_chunk_has_itself_as_window():
    records = passage_records(_chunk("A bakery won the prize."))
    assert [(r.kind, r.text) for r in records] == [
        ("sentence", "A bakery won the prize."),
        ("window", "A bakery won the prize."),
    ]


def test_a_chunk_vector_is_the_mean_of_its_sentence_vectors(e5, tmp_path):
    folder = tmp_path / "articles"
    folder.mkdir()
    (folder / "matsu.md").write_text(
        "馬祖列島位於臺灣海峽西北方。由36個島嶼組成。氣候屬於副熱帶季風氣候。", encoding="utf-8"
    )
    corpus = Corpus(chroma_connection(tmp_path / "data"), "vectors", e5, ChunkingConfig(64, 8))
    corpus.sync([folder])
    store = corpus.store()
    store.open_for_reading()
    (chunk_id,) = store.chunk_ids()
    stored = np.asarray(
        store._collection.get(ids=[chunk_id], include=["embeddings"])["embeddings"][0]
    )
    sentence_vectors = store.passages_of([chunk_id])[chunk_id].sentence_vectors
    mean = sentence_vectors.sum(axis=0)
    # Passage vectors are stored as float16 (index.passage_codec).
    np.testing.assert_allclose(stored, mean / np.linalg.norm(mean), atol=1e-3)
    assert len(sentence_vectors) == 3


def test_groups_are_written_in_order_while_the_next_embeds_and_a_failed_write_stops_the_run(
    e5, tmp_path, monkeypatch
):
    folder = tmp_path / "articles"
    folder.mkdir()
    for n in range(5):
        (folder / f"a{n}.md").write_text(f"第{n}篇文章。馬祖有{n + 30}個島嶼。", encoding="utf-8")
    monkeypatch.setattr(indexer, "_EMBED_GROUP_CHUNKS", 1)  # one article per group
    embedded: list[int] = []
    original_embed = indexer.embed_articles

    def counting_embed(embedder, group):
        embedded.append(len(embedded))
        return original_embed(embedder, group)

    written: list[str] = []
    original_write = ChunkStore.write_versions

    def failing_second_write(store, versions):
        if len(written) == 1:
            raise OSError(28, "No space left on device")
        written.extend(version.article.id for version in versions)
        original_write(store, versions)

    monkeypatch.setattr(indexer, "embed_articles", counting_embed)
    monkeypatch.setattr(ChunkStore, "write_versions", failing_second_write)
    corpus = Corpus(chroma_connection(tmp_path / "data"), "pipeline", e5, ChunkingConfig(64, 8))
    with pytest.raises(OSError, match="No space left"):
        corpus.sync([folder])
    assert len(written) == 1
    assert len(embedded) <= 3  # the failure is met at the next group, not after all five

    monkeypatch.setattr(ChunkStore, "write_versions", original_write)
    corpus.sync([folder])
    assert corpus.counts()[0] == 5


def test_each_sentence_comes_with_the_windows_that_hold_it(e5, tmp_path):
    folder = tmp_path / "articles"
    folder.mkdir()
    (folder / "matsu.md").write_text("馬祖有36個島嶼。氣候寒冷潮濕。冬季多霧。", encoding="utf-8")
    (folder / "one.md").write_text("A bakery won the prize.", encoding="utf-8")
    corpus = Corpus(chroma_connection(tmp_path / "data"), "windows", e5, ChunkingConfig(64, 8))
    corpus.sync([folder])
    retriever = corpus.retriever(retrieval_config())
    chunks = list(retriever._store.get(retriever._store.chunk_ids()).values())
    found = retriever.sentences(chunks)
    by_text = {sentence.text: sentence for sentence in found}
    windows = e5.embed_documents(["馬祖有36個島嶼。氣候寒冷潮濕。", "氣候寒冷潮濕。冬季多霧。"])
    held = {text: len(by_text[text].windows) for text in by_text}
    assert held == {
        "馬祖有36個島嶼。": 1,
        "氣候寒冷潮濕。": 2,
        "冬季多霧。": 1,
        "A bakery won the prize.": 1,
    }
    # float16 storage: the stored windows are the pairs' vectors to 1e-3
    np.testing.assert_allclose(by_text["氣候寒冷潮濕。"].windows, windows, atol=2e-3)
    np.testing.assert_allclose(by_text["馬祖有36個島嶼。"].windows, windows[:1], atol=2e-3)
    np.testing.assert_allclose(by_text["冬季多霧。"].windows, windows[1:], atol=2e-3)
