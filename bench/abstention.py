"""Calibrate abstention: answerable questions against their own set, unanswerable ones (other
sets' questions) against it; false-abstain / false-answer rates per threshold for two signals:

- `top1`: cosine similarity of the nearest chunk;
- `margin`: how far the nearest chunk stands out: top1 minus the median of the next 49,
  topped up with background passages in a small corpus (`index.retrieval.abstention_margin`).

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
from bot.evaluation import eval_corpus, load_questions
from bot.settings import Settings
from index.retrieval import Retriever, abstention_margin, calibrated_policy


def _signals(retriever: Retriever, question: str) -> tuple[float, float, bool]:
    """Top score, margin, and whether the calibrated policy abstains."""
    retrieval = retriever.retrieve(question, 50)
    scores = retrieval.dense_scores
    policy = calibrated_policy(retriever.embedder_identity)
    margin = abstention_margin(scores, retrieval.background_scores)
    return scores[0], margin, bool(policy and policy.should_abstain(retrieval))


def _table(name: str, positives: np.ndarray, negatives: np.ndarray, max_false_abstain: float):
    print(f"\nsignal {name}: threshold  false-abstain  false-answer")
    for threshold in np.quantile(positives, [0.01, 0.02, 0.05, 0.10, 0.20, 0.30]):
        print(
            f"{threshold:24.4f}  {np.mean(positives < threshold):13.3f}"
            f"  {np.mean(negatives >= threshold):12.3f}"
        )
    chosen = float(np.quantile(positives, max_false_abstain))
    print(
        f"chosen (false-abstain <= {max_false_abstain}): {chosen:.4f}, "
        f"false-answer {np.mean(negatives >= chosen):.3f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sets", nargs="+", type=Path)
    parser.add_argument("--per-set", type=int, default=300, help="questions sampled per set")
    parser.add_argument("--max-false-abstain", type=float, default=0.02)
    args = parser.parse_args()

    engine = Engine(Settings())
    rng = random.Random(0)
    samples = {}
    retrievers = {}
    for set_dir in args.sets:
        questions = load_questions(set_dir)
        samples[set_dir] = rng.sample(questions, min(args.per_set, len(questions)))
        corpus = eval_corpus(engine, [set_dir / "articles"])
        corpus.sync([set_dir / "articles"])
        retrievers[set_dir] = engine.retriever(corpus)

    answerable, unanswerable = [], []
    for set_dir, retriever in retrievers.items():
        answerable += [_signals(retriever, q.question) for q in samples[set_dir]]
        for other, questions in samples.items():
            if other != set_dir:
                share = max(1, args.per_set // 3)
                unanswerable += [_signals(retriever, q.question) for q in questions[:share]]

    positives, negatives = np.array(answerable), np.array(unanswerable)
    print(f"{engine.embedder.identity}: {len(positives)} answerable, {len(negatives)} unanswerable")
    for column, name in enumerate(["top1", "margin"]):
        _table(name, positives[:, column], negatives[:, column], args.max_false_abstain)
    print(
        f"\ncalibrated policy: false-abstain {positives[:, 2].mean():.3f}, "
        f"false-answer {1 - negatives[:, 2].mean():.3f}"
    )


if __name__ == "__main__":
    main()
