"""Calibrate the abstention threshold: answerable questions against their own set, unanswerable
ones (another set's questions) against it, and the false-abstain / false-answer rates per cut.

    python bench/abstention.py ../shared/eval/seed-news ../shared/eval/xquad-en-zh-dev \
        ../shared/eval/drcd-dev [--per-set 300]

Each set is indexed (or its cached eval index reused) like `citebot eval` does.
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

import numpy as np

from bot.engine import Engine
from bot.evaluation import eval_collection_name, load_questions
from bot.settings import Settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sets", nargs="+", type=Path)
    parser.add_argument("--per-set", type=int, default=300, help="questions sampled per set")
    parser.add_argument("--max-false-abstain", type=float, default=0.05)
    args = parser.parse_args()

    engine = Engine(Settings())
    rng = random.Random(0)
    samples = {}
    retrievers = {}
    for set_dir in args.sets:
        questions = load_questions(set_dir)
        samples[set_dir] = rng.sample(questions, min(args.per_set, len(questions)))
        corpus = engine.corpus(eval_collection_name(engine, [set_dir / "articles"]))
        corpus.sync([set_dir / "articles"])
        retrievers[set_dir] = corpus.retriever()

    answerable, unanswerable = [], []
    for set_dir, retriever in retrievers.items():
        for question in samples[set_dir]:
            answerable.append(retriever.retrieve(question.question, 1).chunks[0].score)
        for other, questions in samples.items():
            if other != set_dir:
                for question in questions[: max(1, args.per_set // 3)]:
                    unanswerable.append(retriever.retrieve(question.question, 1).chunks[0].score)

    positives, negatives = np.array(answerable), np.array(unanswerable)
    print(f"{engine.embedder.identity}: {len(positives)} answerable, {len(negatives)} unanswerable")
    print("threshold  false-abstain  false-answer")
    for threshold in np.arange(0.70, 0.90, 0.01):
        print(
            f"{threshold:9.2f}  {np.mean(positives < threshold):13.3f}"
            f"  {np.mean(negatives >= threshold):12.3f}"
        )
    chosen = float(np.quantile(positives, args.max_false_abstain))
    print(
        f"chosen (false-abstain <= {args.max_false_abstain}): {chosen:.3f}, "
        f"false-answer {np.mean(negatives >= chosen):.3f}"
    )


if __name__ == "__main__":
    main()
