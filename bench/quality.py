"""One table: every evaluation set x retrieval mode, with hit@k, MRR@10 and latency.

    python bench/quality.py ../shared/eval/seed-news ../shared/eval/xquad-en-zh-dev \
        ../shared/eval/drcd-dev [--modes dense bm25 hybrid] [--limit N]

Retrieval only (no answers); each set's cached eval index is reused. Abstention rates come
from `bench/abstention.py`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from bot.engine import Engine
from bot.evaluation import HIT_KS, evaluate_set
from bot.settings import Settings
from index.embedding import load_embedder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sets", nargs="+", type=Path)
    parser.add_argument("--modes", nargs="+", default=["dense", "bm25", "hybrid"])
    parser.add_argument("--limit", type=int)
    args = parser.parse_args()

    embedder = load_embedder(Settings().embedder_spec)
    hits = "  ".join(f"hit@{k}" for k in HIT_KS)
    print(f"{'set':16} {'mode':7} {hits}  MRR@10  p50_ms  p95_ms")
    for set_dir in args.sets:
        for mode in args.modes:
            engine = Engine(Settings(CITEBOT_RETRIEVAL=mode), embedder)
            m = evaluate_set(engine, set_dir, limit=args.limit, answers=False)
            latency = m["retrieval_latency_ms"]
            row = "  ".join(f"{m[f'hit@{k}']:.3f}" for k in HIT_KS)
            print(
                f"{set_dir.name:16} {mode:7} {row}  {m['mrr@10']:.3f}  "
                f"{latency['p50']:6}  {latency['p95']:6}"
            )


if __name__ == "__main__":
    main()
