"""Warm retrieval latency on a 10k-chunk index (issue target: p95 <= 50 ms on this machine).

    python bench/retrieval_latency.py ../shared/eval/drcd-dev [--chunks 10000] [--queries 200]

Embedding 10k real chunks takes hours here, so the set's own eval index is built (or reused),
then its chunks and their passages are copied, vectors slightly perturbed, into a scratch store
until it holds `--chunks` chunks. Dense search, BM25 and fusion then run on a real index of that
size. Prints p50/p95 per mode, median of `--runs` passes.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from bot.answer.engine import Engine
from bot.evaluation import eval_corpus, load_questions
from bot.settings import Settings
from index.lexical import LexicalIndex
from index.retrieval import Retriever
from index.store import ChromaConnection, ChunkStore


def _copy(page: dict, target, suffix: str, take: int, rng: np.random.Generator) -> list[str]:
    """Add the first `take` records of a collection page to `target` under new ids (vectors
    slightly perturbed, passage records pointing at the copied chunks); returns the ids."""
    vectors = np.asarray(page["embeddings"][:take])
    vectors = vectors + rng.normal(0, 0.01, vectors.shape)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    # A passage id names its chunk (`<chunk>.s3`): the copy's names the copied chunk.
    ids = [
        f"{m['chunk']}-{suffix}.{record_id.rpartition('.')[2]}"
        if "chunk" in m
        else f"{record_id}-{suffix}"
        for record_id, m in zip(page["ids"][:take], page["metadatas"][:take], strict=True)
    ]
    documents = page["documents"][:take]
    metadatas = [
        {**m, "chunk": f"{m['chunk']}-{suffix}"} if "chunk" in m else m
        for m in page["metadatas"][:take]
    ]
    batch = 5000
    for first in range(0, take, batch):
        target.add(
            ids=ids[first : first + batch],
            embeddings=vectors[first : first + batch],
            documents=documents[first : first + batch],
            metadatas=metadatas[first : first + batch],
        )
    return ids


def _scaled_store(source: ChunkStore, target: ChunkStore, size: int) -> LexicalIndex:
    """Fill `target` with copies of `source`'s chunks (and their passages) up to `size`
    chunks; return the BM25 index of the copied chunks."""
    include = ["embeddings", "documents", "metadatas"]
    chunks = source._collection.get(include=include)
    passages = source._passages.get(include=include)
    rng = np.random.default_rng(0)
    ids: list[str] = []
    texts: list[str] = []
    copy = 0
    while len(ids) < size:
        take = min(len(chunks["ids"]), size - len(ids))
        ids += _copy(chunks, target._collection, str(copy), take, rng)
        taken = set(chunks["ids"][:take])
        keep = [i for i, m in enumerate(passages["metadatas"]) if m["chunk"] in taken]
        subset = {key: [passages[key][i] for i in keep] for key in ("ids", *include)}
        _copy(subset, target._passages, str(copy), len(keep), rng)
        texts += [
            f"{m['title']}\n{d}"
            for d, m in zip(chunks["documents"][:take], chunks["metadatas"][:take], strict=True)
        ]
        copy += 1
    return LexicalIndex.build(ids, texts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("set_dir", type=Path)
    parser.add_argument("--chunks", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    engine = Engine(Settings())
    source_corpus = eval_corpus(engine, [args.set_dir / "articles"])
    source_corpus.sync([args.set_dir / "articles"])
    source = source_corpus.store()
    source.open_for_reading()

    with tempfile.TemporaryDirectory() as scratch:
        connection = ChromaConnection(Path(scratch), None, engine.settings.index_lease_seconds)
        target = ChunkStore(connection, "latency", engine.embedder.identity)
        target.open_for_writing()
        lexical = _scaled_store(source, target, args.chunks)
        questions = [q.question for q in load_questions(args.set_dir)[: args.queries]]
        print(f"{target.count()} chunks, {len(questions)} queries, {engine.embedder.identity}")
        for mode in ("dense", "bm25", "hybrid"):
            config = dataclasses.replace(engine.settings.retrieval_config, mode=mode)
            retriever = Retriever(engine.embedder, target, lexical, config)
            retriever.retrieve(questions[0], 10)  # warm up
            p50s, p95s = [], []
            for _ in range(args.runs):
                times = []
                for question in questions:
                    started = time.perf_counter()
                    retriever.retrieve(question, 10)
                    times.append((time.perf_counter() - started) * 1000)
                p50s.append(statistics.median(times))
                p95s.append(statistics.quantiles(times, n=20)[18])
            print(
                f"{mode:6}  p50 {statistics.median(p50s):6.1f} ms  "
                f"p95 {statistics.median(p95s):6.1f} ms  (median of {args.runs} runs)"
            )


if __name__ == "__main__":
    main()
