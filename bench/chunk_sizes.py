"""Retrieval quality and index cost per chunk size, to choose `CITEBOT_CHUNK_TOKENS`.

    python bench/chunk_sizes.py ../shared/eval/xquad-en-zh-dev --sizes 256 384 512 [--limit N]

Each size gets its own cached eval index (the first run embeds the set once per size).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from bot.answer.engine import Engine
from bot.evaluation import evaluate_set
from bot.settings import Settings, load_settings
from index.embedding import load_embedder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sets", nargs="+", type=Path)
    parser.add_argument("--sizes", nargs="+", type=int, default=[256, 384, 512])
    parser.add_argument("--mode", default="hybrid", choices=["dense", "bm25", "hybrid"])
    parser.add_argument("--limit", type=int)
    args = parser.parse_args()

    embedder = load_embedder(load_settings().embedder_spec)
    print("set             tokens  chunks  hit@1  hit@3  hit@5  MRR@10  p95_ms  index_s")
    for set_dir in args.sets:
        for size in args.sizes:
            settings = Settings(
                CITEBOT_CHUNK_TOKENS=size,
                CITEBOT_CHUNK_OVERLAP_TOKENS=size // 5,
                CITEBOT_RETRIEVAL=args.mode,
                CITEBOT_MIN_SCORE=0.0,
            )
            m = evaluate_set(Engine(settings, embedder), set_dir, limit=args.limit, answers=False)
            print(
                f"{set_dir.name:15} {size:6}  {m['chunks']:6}  {m['hit@1']:.3f}  {m['hit@3']:.3f}"
                f"  {m['hit@5']:.3f}  {m['mrr@10']:.3f}  {m['retrieval_latency_ms']['p95']:6}"
                f"  {m['index_seconds']}"
            )


if __name__ == "__main__":
    main()
