"""`citebot eval`: retrieval and answer quality on an evaluation set, as shared/eval defines them.

hit@k: a top-k chunk comes from the gold article and contains an answer string (both NFKC).
MRR@10: reciprocal rank of the first such chunk. answer_hit: the answer text or its cited quotes
contain an answer; answer_first_hit: the first quoted sentence does; quotes_per_answer: the
mean number of quoted sentences of the answered questions. The set is indexed into its own
collection, reused while nothing changed.
"""

from __future__ import annotations

import hashlib
import json
import statistics
import time
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from bot.answer.engine import Engine
from bot.answer.extractive import Answer, clean_question
from index.corpus import Corpus
from index.errors import CitebotError
from index.indexer import IndexProgress
from index.store import INDEX_FORMAT, StoredChunk

HIT_KS = (1, 3, 5, 10)
_REQUIRED_KEYS = ("id", "question", "answers", "article")


class EvalSetError(CitebotError):
    """An evaluation set folder that is missing or whose questions cannot be read."""


@dataclass(frozen=True)
class EvalQuestion:
    """One row of questions.jsonl."""

    id: str
    question: str
    answers: list[str]
    gold_path: Path
    lang: str


def load_questions(set_dir: Path) -> list[EvalQuestion]:
    """Read `questions.jsonl`; gold articles are resolved to absolute paths. A missing file or a
    row without `id`, `question`, `answers` or `article` is an `EvalSetError` naming it."""
    articles = (set_dir / "articles").resolve()
    path = set_dir / "questions.jsonl"
    if not path.is_file():
        raise EvalSetError(f"{path} not found: an evaluation set is a folder with questions.jsonl")
    rows = []
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                missing = [key for key in _REQUIRED_KEYS if key not in row]
            except ValueError as error:
                raise EvalSetError(f"{path}, line {number}: not JSON ({error})") from None
            if missing:
                raise EvalSetError(
                    f"{path}, line {number}: the row has no {', '.join(missing)} "
                    f"(each row needs {', '.join(_REQUIRED_KEYS)})"
                )
            rows.append(
                EvalQuestion(
                    id=str(row["id"]),
                    question=row["question"],
                    answers=list(row["answers"]),
                    gold_path=articles / row["article"],
                    lang=row.get("lang", ""),
                )
            )
    return rows


def first_hit_rank(chunks: Sequence[StoredChunk], question: EvalQuestion) -> int | None:
    """1-based rank of the first chunk from the gold article containing an answer, else None."""
    answers = [_nfkc(answer) for answer in question.answers]
    for rank, chunk in enumerate(chunks, start=1):
        if Path(chunk.path).resolve() == question.gold_path and any(
            answer in _nfkc(chunk.text) for answer in answers
        ):
            return rank
    return None


def answer_hit(answer: Answer, question: EvalQuestion) -> bool:
    """Whether the answer text or a cited quote contains one of the expected answers."""
    said = " ".join([answer.text, *(citation.quote for citation in answer.citations)])
    return not answer.abstained and _contains_answer(said, question)


def answer_first_hit(answer: Answer, question: EvalQuestion) -> bool:
    """Whether the first quoted sentence (the one the reader reads first) contains an answer."""
    return (
        not answer.abstained
        and bool(answer.quotes)
        and _contains_answer(answer.quotes[0], question)
    )


def _contains_answer(text: str, question: EvalQuestion) -> bool:
    said = _nfkc(text)
    return any(_nfkc(expected) in said for expected in question.answers)


def evaluate_set(
    engine: Engine,
    set_dir: Path,
    *,
    k: int = 10,
    extra_articles: Sequence[Path] = (),
    limit: int | None = None,
    answers: bool = True,
    unanswerable: Sequence[str] = (),
    on_progress: Callable[[IndexProgress], None] | None = None,
    details: TextIO | None = None,
) -> dict[str, object]:
    """Index the set (cached), ask every question, and return the metrics.

    With `answers=False` only retrieval is measured (answer_hit is None): much faster, since
    composing an extractive answer embeds the candidate sentences. `abstained` is the share of
    questions the abstention policy turns down; `false_answer`, given `unanswerable` questions
    (other sets' questions, say), the share of those it still answers. With `details`, one
    JSON line per question is written to it (`question_details`).
    """
    if not set_dir.is_dir():
        raise EvalSetError(f"{set_dir} is not a folder: give an evaluation set's folder")
    roots = [set_dir / "articles", *extra_articles]
    corpus = eval_corpus(engine, roots)
    report = corpus.sync(roots, on_progress=on_progress)
    questions = load_questions(set_dir)[:limit]
    retriever = engine.retriever(corpus)
    answerer = engine.answerer(retriever)
    ranks: list[int | None] = []
    hits: list[bool] = []
    first_hits: list[bool] = []
    quote_counts: list[int] = []
    abstained = 0
    latencies, retrieval_latencies = [], []
    for question in questions:
        started = time.perf_counter()
        retrieval = retriever.retrieve(clean_question(question.question, 10_000), max(k, 10))
        retrieved = time.perf_counter()
        rank = first_hit_rank(retrieval.chunks[:10], question)
        ranks.append(rank)
        retrieval_latencies.append((retrieved - started) * 1000)
        abstained += answerer.abstains(retrieval)
        answer = None
        if answers:
            answer = answerer.respond(retrieval).answer
            latencies.append((time.perf_counter() - started) * 1000)
            hits.append(answer_hit(answer, question))
            first_hits.append(answer_first_hit(answer, question))
            if not answer.abstained:
                quote_counts.append(len(answer.quotes))
        if details is not None:
            row = question_details(question, rank, answer)
            details.write(json.dumps(row, ensure_ascii=False) + "\n")
    count = max(len(questions), 1)
    metrics: dict[str, object] = {
        "set": set_dir.name,
        "questions": len(questions),
        "chunks": report.chunks_total,
        "embedder": engine.embedder.identity,
        "retrieval": engine.settings.retrieval,
        "index_seconds": round(report.seconds, 1),
        "chunks_embedded": report.chunks_embedded,
    }
    for cutoff in HIT_KS:
        metrics[f"hit@{cutoff}"] = round(
            sum(r is not None and r <= cutoff for r in ranks) / count, 4
        )
    metrics["mrr@10"] = round(sum(1 / r for r in ranks if r is not None) / count, 4)
    metrics["answer_hit"] = round(sum(hits) / count, 4) if answers else None
    metrics["answer_first_hit"] = round(sum(first_hits) / count, 4) if answers else None
    metrics["quotes_per_answer"] = (
        round(statistics.fmean(quote_counts), 3) if answers and quote_counts else None
    )
    metrics["abstained"] = round(abstained / count, 4)
    answered = [not answerer.abstains(retriever.retrieve(q, 10)) for q in unanswerable]
    metrics["false_answer"] = round(sum(answered) / len(answered), 4) if answered else None
    metrics["latency_ms"] = _percentiles(latencies) if answers else None
    metrics["retrieval_latency_ms"] = _percentiles(retrieval_latencies)
    return metrics


def question_details(
    question: EvalQuestion, rank: int | None, answer: Answer | None
) -> dict[str, object]:
    """One `--details` line: the question, the rank of its first hit, and (when answers are
    measured) the answer, its quotes and whether they hold an expected answer."""
    row: dict[str, object] = {
        "id": question.id,
        "question": question.question,
        "answers": question.answers,
        "first_hit_rank": rank,
    }
    if answer is not None:
        row |= {
            "abstained": answer.abstained,
            "answer": answer.text,
            "quotes": list(answer.quotes),
            "answer_hit": answer_hit(answer, question),
            "answer_first_hit": answer_first_hit(answer, question),
        }
    return row


def format_eval(metrics: dict[str, object]) -> str:
    """A short human-readable report of `evaluate_set`'s metrics."""
    retrieval = metrics["retrieval_latency_ms"]
    lines = [
        f"set {metrics['set']}: {metrics['questions']} questions, {metrics['chunks']} chunks "
        f"({metrics['embedder']}, {metrics['retrieval']}; "
        f"{metrics['chunks_embedded']} embedded in {metrics['index_seconds']} s)",
        "  ".join(f"hit@{k} {metrics[f'hit@{k}']:.3f}" for k in HIT_KS)
        + f"  MRR@10 {metrics['mrr@10']:.3f}",
        f"retrieval latency p50 {retrieval['p50']} ms, p95 {retrieval['p95']} ms",  # type: ignore[index]
    ]
    lines.append(f"abstained {metrics['abstained']:.3f}")
    if metrics["false_answer"] is not None:
        lines[-1] += f"  false-answer on unanswerable {metrics['false_answer']:.3f}"
    if metrics["answer_hit"] is not None:
        latency = metrics["latency_ms"]
        quotes = metrics["quotes_per_answer"]
        lines += [
            f"answer_hit {metrics['answer_hit']:.3f}  "
            f"answer_first_hit {metrics['answer_first_hit']:.3f}  "
            f"quotes_per_answer {'-' if quotes is None else f'{quotes:.2f}'}",
            f"answer latency p50 {latency['p50']} ms, p95 {latency['p95']} ms",  # type: ignore[index]
        ]
    return "\n".join(lines)


def eval_corpus(engine: Engine, roots: Sequence[Path]) -> Corpus:
    """The evaluation index of these folders, kept apart from the team's index (`DATA_DIR/eval`)
    so evaluating never blocks or clutters it."""
    connection = engine.connection_at(engine.settings.data_dir / "eval")
    return Corpus(
        connection, _collection_name(engine, roots), engine.embedder, engine.settings.chunking
    )


def _collection_name(engine: Engine, roots: Sequence[Path]) -> str:
    """One collection per set of folders, embedder and chunking, so a cached index stays valid."""
    key = json.dumps(
        [
            [str(root.resolve()) for root in roots],
            engine.embedder.identity,
            INDEX_FORMAT,
            engine.settings.chunk_tokens,
            engine.settings.chunk_overlap_tokens,
        ]
    )
    return "eval-" + hashlib.sha256(key.encode()).hexdigest()[:16]


def _percentiles(values: list[float]) -> dict[str, float]:
    if len(values) < 2:
        only = round(values[0], 1) if values else 0.0
        return {"p50": only, "p95": only}
    cuts = statistics.quantiles(values, n=20, method="inclusive")
    return {"p50": round(statistics.median(values), 1), "p95": round(cuts[18], 1)}


def _nfkc(text: str) -> str:
    return unicodedata.normalize("NFKC", text)
