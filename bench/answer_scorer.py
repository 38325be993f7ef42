"""Fit the sentence scorer (bot/answer/sentence_scoring.py) and measure each of its signals.

    python bench/answer_scorer.py ../shared/eval/xquad-en-zh-dev ../shared/eval/drcd-dev \
        [--per-set 600]

For every question the sentences of its top chunks are the candidates, labelled by whether
they hold a gold answer (from the gold article). Leave-one-set-out: the scorer is fitted on
the other sets and judged on the one left out, by the share of questions whose best-scored
sentence holds the answer (`first`). Then each signal alone, and all signals but one (ablation),
the same way; and the weights fitted on every set, to paste into bot/answer/sentence_scoring.py.
Each set must have been indexed by `citebot eval` first (its cached eval index is read).
"""

from __future__ import annotations

import argparse
import random
import unicodedata
from pathlib import Path

import numpy as np

from bot.answer.engine import Engine
from bot.answer.extractive import QUOTE_CANDIDATE_CHUNKS, clean_question
from bot.answer.sentence_scoring import FEATURES, Question, candidates, features
from bot.evaluation import eval_corpus, load_questions
from bot.settings import Settings

Group = tuple[np.ndarray, np.ndarray]  # (feature rows, labels) of one question's candidates


def collect(engine: Engine, set_dir: Path, per_set: int) -> list[Group]:
    """Candidates' features and labels for a sample of the set's questions."""
    retriever = engine.retriever(eval_corpus(engine, [set_dir / "articles"]))
    questions = load_questions(set_dir)
    sample = random.Random(0).sample(questions, min(per_set, len(questions)))
    groups = []
    for question in sample:
        retrieval = retriever.retrieve(clean_question(question.question, 10_000), 10)
        top = retrieval.chunks[:QUOTE_CANDIDATE_CHUNKS]
        found = candidates(top, retriever.sentences(top))
        answers = [unicodedata.normalize("NFKC", a) for a in question.answers]
        labels = np.array(
            [
                Path(c.chunk.path).resolve() == question.gold_path
                and any(a in unicodedata.normalize("NFKC", c.text) for a in answers)
                for c in found
            ],
            dtype=float,
        )
        rows = features(Question.of(question.question, retrieval.query_vector), found)
        groups.append((rows, labels))
    return groups


def fit(groups: list[Group], columns: list[int], l2: float = 1.0) -> np.ndarray:
    """Logistic regression (Newton's method, a little L2) on the chosen columns; the last
    weight is the bias."""
    x = np.vstack([rows[:, columns] for rows, _ in groups if len(rows)])
    y = np.concatenate([labels for rows, labels in groups if len(rows)])
    x = np.hstack([x, np.ones((len(x), 1))])
    w = np.zeros(x.shape[1])
    penalty = l2 * np.eye(x.shape[1])
    penalty[-1, -1] = 0
    for _ in range(50):
        p = 1 / (1 + np.exp(-x @ w))
        gradient = x.T @ (p - y) + penalty @ w
        hessian = (x.T * (p * (1 - p))) @ x + penalty
        step = np.linalg.solve(hessian, gradient)
        w -= step
        if np.abs(step).max() < 1e-6:
            break
    return w


def first_share(groups: list[Group], columns: list[int], w: np.ndarray) -> float:
    """Share of questions whose best-scored candidate holds the answer."""
    hits = 0
    for rows, labels in groups:
        if len(rows):
            hits += labels[int(np.argmax(rows[:, columns] @ w[:-1]))] > 0
    return hits / max(len(groups), 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sets", nargs="+", type=Path)
    parser.add_argument("--per-set", type=int, default=600)
    args = parser.parse_args()

    engine = Engine(Settings())
    data = {set_dir.name: collect(engine, set_dir, args.per_set) for set_dir in args.sets}
    everything = list(range(len(FEATURES)))
    ceiling = {name: np.mean([labels.any() for _, labels in g]) for name, g in data.items()}
    print("held-out share of questions whose best sentence holds the answer")
    print(f"{'signals':32} " + "  ".join(f"{name:>16}" for name in data))
    print(f"{'(any candidate holds it)':32} " + "  ".join(f"{ceiling[n]:16.3f}" for n in data))

    def report(label: str, columns: list[int]) -> None:
        shares = []
        for held_out in data:
            train = [g for name, groups in data.items() if name != held_out for g in groups]
            w = fit(train or data[held_out], columns)
            shares.append(first_share(data[held_out], columns, w))
        print(f"{label:32} " + "  ".join(f"{share:16.3f}" for share in shares), flush=True)

    report("similarity alone", [0])
    for n, name in enumerate(FEATURES):
        if n:
            report(f"similarity + {name}", [0, n])
    report("all", everything)
    for n, name in enumerate(FEATURES):
        report(f"all but {name}", [c for c in everything if c != n])
    w = fit([g for groups in data.values() for g in groups], everything)
    print("\nfitted on every set:")
    print(f"weights=({', '.join(f'{v:.3f}' for v in w[:-1])}), bias={w[-1]:.3f}")


if __name__ == "__main__":
    main()
