"""One table: every evaluation set x retrieval mode, with hit@k, MRR@10, answers, latency and
abstention.

    python bench/quality.py ../shared/eval/seed-news ../shared/eval/xquad-en-zh-dev \
        ../shared/eval/drcd-dev [--modes dense bm25 hybrid hybrid+rerank] [--limit N] \
        [--no-answers]

Each set's cached eval index is reused. `ans_hit`, `first` and `quotes` are answer_hit,
answer_first_hit and quotes_per_answer of the extractive answers (`--no-answers` skips them:
retrieval alone is faster); `p50_ms`/`p95_ms` the latency of a whole answer (retrieval alone
with `--no-answers`). `seed-news` is indexed
together with the articles of `drcd-dev` beside it as distractors, as the eval README asks.
`abstain` is the share of a set's own (answerable) questions the abstention policy turns down;
`false-ans` the share of other sets' questions (up to `--unanswerable` of each, unanswerable
here; distractors' own questions excepted) it still answers. `hybrid+rerank` needs a
cross-encoder: CITEBOT_RERANKER names one.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from bot.answer.engine import Engine
from bot.evaluation import HIT_KS, evaluate_set, load_questions
from bot.settings import Settings
from index.embedding import load_embedder

_DISTRACTED_SET = "seed-news"
_DISTRACTOR_SET = "drcd-dev"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sets", nargs="+", type=Path)
    parser.add_argument("--modes", nargs="+", default=["dense", "bm25", "hybrid", "hybrid+rerank"])
    parser.add_argument("--limit", type=int)
    parser.add_argument("--unanswerable", type=int, default=100, help="questions per other set")
    parser.add_argument("--no-answers", action="store_true", help="retrieval metrics only")
    args = parser.parse_args()

    settings = Engine.configured().settings
    embedder = load_embedder(settings.embedder_spec)
    # One engine per mode, built once: the reranker (a model load) is loaded once, not per set.
    engines = {
        mode: Engine(
            Settings(
                CITEBOT_RETRIEVAL=mode.removesuffix("+rerank"),
                CITEBOT_RERANKER=settings.reranker if mode.endswith("+rerank") else None,
            ),
            embedder,
        )
        for mode in args.modes
    }
    hits = "  ".join(f"hit@{k}" for k in HIT_KS)
    print(f"{embedder.identity}, chunks {settings.chunk_tokens}/{settings.chunk_overlap_tokens}")
    print(
        f"{'set':16} {'mode':13} {hits}  MRR@10  ans_hit  first  quotes  p50_ms  p95_ms  "
        "abstain  false-ans"
    )
    for set_dir in args.sets:
        distractors = set_dir.parent / _DISTRACTOR_SET / "articles"
        extra = [distractors] if set_dir.name == _DISTRACTED_SET and distractors.is_dir() else []
        unanswerable = [
            question.question
            for other in args.sets
            if other != set_dir and not (extra and other.name == _DISTRACTOR_SET)
            for question in load_questions(other)[: args.unanswerable]
        ]
        for mode, engine in engines.items():
            if mode.endswith("+rerank") and engine.reranker is None:
                print(f"{set_dir.name:16} {mode:13} (no reranker available: CITEBOT_RERANKER)")
                continue
            m = evaluate_set(
                engine,
                set_dir,
                extra_articles=extra,
                limit=args.limit,
                answers=not args.no_answers,
                unanswerable=unanswerable,
            )
            latency = m["retrieval_latency_ms" if args.no_answers else "latency_ms"]
            row = "  ".join(f"{m[f'hit@{k}']:.3f}" for k in HIT_KS)
            answers = "  ".join(
                f"{_figure(m[name]):>{width}}"
                for name, width in (("answer_hit", 7), ("answer_first_hit", 5))
            )
            print(
                f"{set_dir.name:16} {mode:13} {row}  {m['mrr@10']:.3f}  {answers}  "
                f"{_figure(m['quotes_per_answer'], 2):>6}  {latency['p50']:6}  "
                f"{latency['p95']:6}  {m['abstained']:7.3f}  {_figure(m['false_answer']):>9}",
                flush=True,
            )


def _figure(value: object, digits: int = 3) -> str:
    """A rate for the table, or '-' when it was not measured."""
    return "-" if value is None else f"{value:.{digits}f}"


if __name__ == "__main__":
    main()
