"""The passage scheme: what each chunk is found by, and how a group of articles is embedded.

A chunk is found by its sentences (each read with the article's title, for topic) and by each
pair of adjacent sentences (read as they are); its own vector is the mean of its sentences'.
The store searches the chunk vectors and keeps the passage vectors packed beside them
(`index.passage_codec`); `index.retrieval` ranks the chunks it found by their passages.

The model reads each article token about 3.2 times this way. Cheaper schemes lost quality
(tokens read per article token; `citebot index` CPU-s per 1,000 article tokens on drcd-dev's
first 30 articles; xquad-en-zh-dev hit@1 / MRR@10 / answer_hit):
- this scheme: 3.22, 4.36 CPU-s; 0.868 / 0.920 / 0.770;
- windows as the normalised sum of their two sentences' vectors: 1.26, 2.16; 0.838 / 0.903 /
  0.752 (on drcd-dev's first 100 articles within 0.003 of this scheme);
- late chunking, one pass per titled chunk, each sentence and window the mean of its tokens'
  states (and the prompt's): 1.02, 1.75; 0.727 / 0.827 / 0.384, and on drcd-dev's first 100
  articles 0.955 / 0.974 / 0.766 against 0.982 / 0.991 / 0.892 (a sentence pooled in its chunk
  carries the chunk's topic more than its own content, which also misleads the answer's
  sentence choice);
- titled sentences as now, windows from a late pass: 2.28, 3.32; 0.843 / 0.903 / 0.719.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from index.articles import Article
from index.chunking import Chunk, passage_with_title
from index.embedding import Embedder
from index.records import PassageRecord
from index.sentences import sentence_spans


@dataclass(frozen=True)
class EmbeddedArticle:
    """An article's passages with their vectors, and its chunks' vectors (in chunk order)."""

    records: list[PassageRecord]
    passage_vectors: np.ndarray
    chunk_vectors: np.ndarray


def embed_articles(
    embedder: Embedder, group: Sequence[tuple[Article, Sequence[Chunk]]]
) -> list[EmbeddedArticle]:
    """Embed the passages of several articles in one call, so the embedder gets full batches
    (sentence-transformers sorts them by length, which keeps padding small)."""
    records = [
        [record for chunk in chunks for record in passage_records(chunk)] for _, chunks in group
    ]
    texts = [
        _embedded_text(article, record)
        for (article, _), own in zip(group, records, strict=True)
        for record in own
    ]
    vectors = (
        embedder.embed_documents(texts)
        if texts
        else np.zeros((0, embedder.dimension), dtype=np.float32)
    )
    embedded, offset = [], 0
    for (_, chunks), own in zip(group, records, strict=True):
        own_vectors = vectors[offset : offset + len(own)]
        offset += len(own)
        embedded.append(EmbeddedArticle(own, own_vectors, _chunk_vectors(chunks, own, own_vectors)))
    return embedded


def passage_records(chunk: Chunk) -> list[PassageRecord]:
    """The passages a chunk is found by: each sentence, and each pair of adjacent sentences (a
    one-sentence chunk's window is the sentence itself)."""
    spans = [(span.start, span.end) for span in sentence_spans(chunk.text)]
    sentences = [
        PassageRecord(chunk.id, "sentence", chunk.text[start:end], start, end)
        for start, end in spans
    ]
    windows = [
        PassageRecord(
            chunk.id,
            "window",
            "".join(s.text for s in sentences[n : n + 2]),
            sentences[n].start if sentences else 0,
            sentences[min(n + 1, len(sentences) - 1)].end if sentences else 0,
        )
        for n in range(max(len(sentences) - 1, 1))
    ]
    return [*sentences, *windows]


def _embedded_text(article: Article, passage: PassageRecord) -> str:
    """What the model reads for a passage: a sentence with its article's title for topic, a
    window as it is (measured on xquad-en-zh-dev: titled windows lose 0.005 MRR@10 and add
    nothing the titled sentence does not already carry)."""
    return (
        passage_with_title(article.title, passage.text)
        if passage.kind == "sentence"
        else passage.text
    )


def _chunk_vectors(
    chunks: Sequence[Chunk], passages: Sequence[PassageRecord], vectors: np.ndarray
) -> np.ndarray:
    """Each chunk's vector: the normalised mean of its sentences' vectors.

    Retrieval scores chunks by their passages; the chunk vector only has to place the chunk
    sensibly for Chroma, and a mean costs no extra pass of the model over 500-token texts.
    """
    rows = {chunk.id: n for n, chunk in enumerate(chunks)}
    sums = np.zeros((len(chunks), vectors.shape[1]), dtype=np.float32)
    for passage, vector in zip(passages, vectors, strict=True):
        if passage.kind == "sentence":
            sums[rows[passage.chunk_id]] += vector
    norms = np.linalg.norm(sums, axis=1, keepdims=True)
    return sums / np.where(norms == 0, 1.0, norms)
