"""Smoke-test a language model before trusting it: ask an evaluation set's questions through
the endpoint `LLM_BASE_URL` names and print each answer, its sources and the citation check's
verdict on every sentence the model wrote, after the question's rewrite into the articles'
language that retrieval searched for too.

    LLM_BASE_URL=http://localhost:11434/v1 LLM_MODEL=qwen2.5:7b-instruct \\
        python bench/llm_smoke.py ../shared/eval/seed-news/questions.jsonl

The articles (`--articles`, default: `articles/` beside the questions file) are indexed into a
collection of their own under `CITEBOT_DATA_DIR/eval`, reused while they do not change. A model
that follows the rules has most sentences supported and few fallbacks to quotes.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bot.answer.engine import Engine
from bot.answer.pipeline import Response
from index.corpus import Corpus
from index.retrieval import Retrieval, Retriever

_MARKS = {"supported": "ok", "unverified": "??", "unsupported": "XX", "uncited": "XX"}


def main(argv: Sequence[str] | None = None) -> int:
    """Ask every question and print the report; returns the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("questions", type=Path, help="a questions.jsonl file")
    parser.add_argument("--articles", type=Path, help="default: articles/ beside the questions")
    parser.add_argument("--limit", type=int, help="only the first N questions")
    args = parser.parse_args(argv)
    engine = Engine.configured()
    if engine.chat is None:
        print("llm_smoke: set LLM_BASE_URL and LLM_MODEL (see .env.example)", file=sys.stderr)
        return 2
    rows = [json.loads(line) for line in args.questions.read_text("utf-8").splitlines() if line]
    retriever = _retriever(engine, args.articles or args.questions.parent / "articles")
    answerer = engine.responder(retriever)
    responses = []
    for row in rows[: args.limit]:
        retrieval = answerer.retrieve(row["question"])
        response = answerer.respond(retrieval)
        _print_response(row, retrieval, response)
        responses.append((row, response))
    _print_summary(engine.answer_mode, responses)
    return 0


def _retriever(engine: Engine, articles: Path) -> Retriever:
    """A retriever over the articles' own index (built, or brought up to date)."""
    settings = engine.settings
    name = "llm-smoke-" + hashlib.sha256(str(articles.resolve()).encode()).hexdigest()[:12]
    corpus = Corpus(
        engine.connection_at(settings.data_dir / "eval"), name, engine.embedder, settings.chunking
    )
    corpus.sync([articles])
    return engine.retriever(corpus)


def _print_response(row: dict[str, Any], retrieval: Retrieval, response: Response) -> None:
    answer = response.answer
    check = response.generation.check if response.generation else None
    print(f"\n[{row.get('id', '?')}] {row['question']}")
    for rewrite in retrieval.rewrites or ["none (in the articles' language, or the model failed)"]:
        print(f"  rewrite: {rewrite}")
    expected = [str(item) for item in row.get("answers", [])]
    if expected:
        print(f"  expected: {', '.join(expected)}")
    seconds = answer.timings_ms.get("generate", 0.0) / 1000
    label = "generated" if answer.mode == "generated" else "quoted (fallback)"
    print(f"  answer ({label}, model {seconds:.1f} s): {answer.text}")
    if answer.notice:
        print(f"  notice: {answer.notice}")
    if check is not None:
        if check.leaked_instructions:
            print("  XX the reply repeats the rules")
        for sentence in check.sentences:
            detail = f" missing: {', '.join(sentence.missing)}" if sentence.missing else ""
            wrong = f" no such passage: {sentence.out_of_range}" if sentence.out_of_range else ""
            verdict = f"{_MARKS[sentence.verdict]} {sentence.verdict:<11}"
            print(f"  {verdict} {sentence.text}{detail}{wrong}")
    for citation in answer.citations:
        print(f"  [{citation.n}] {citation.title} ({citation.date or 'no date'}) - {citation.path}")
        print(f"      \u201c{citation.quote[:200]}\u201d")
        if citation.gloss:
            print(f"      = {citation.gloss}")


def _print_summary(mode: str, responses: list[tuple[dict[str, Any], Response]]) -> None:
    generated = sum(response.answer.mode == "generated" for _, response in responses)
    generations = [response.generation for _, response in responses if response.generation]
    checks = [generation.check for generation in generations if generation.check]
    sentences = [sentence for check in checks for sentence in check.sentences]
    kept = sum(sentence.kept for sentence in sentences)
    print(
        f"\n{mode}: {len(responses)} questions, {generated} generated, "
        f"{len(responses) - generated} quoted instead; "
        f"{kept}/{len(sentences)} generated sentences kept by the citation check"
    )


if __name__ == "__main__":
    sys.exit(main())
