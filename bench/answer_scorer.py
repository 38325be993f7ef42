"""Fit the sentence scorer (bot/answer/sentence_scoring.py), measure each of its signals, and
the choice of quotes (bot/answer/extractive.py) it drives.

    python bench/answer_scorer.py ../shared/eval/xquad-en-zh-dev ../shared/eval/drcd-dev \
        [--per-set 600] [--cache DIR]

For every question the sentences of its top chunks are the candidates, labelled by whether
they hold a gold answer (from the gold article). Leave-one-set-out: the scorer is fitted on the
other sets and judged on the one left out, by the share of questions whose best-scored sentence
holds the answer (`first`); then each signal added to similarity alone, and all signals but
one. Then the quote choice with the held-out weights, for several closeness thresholds: the
share of questions with an answering quote (`any`), with it first, and quotes per question.
Last, the weights fitted on every set, to paste into bot/answer/sentence_scoring.py.
Questions the abstention policy turns down count as misses, as in `citebot eval`. Each set is
indexed like `citebot eval` does (its cached eval index is reused); `--cache` keeps the
collected candidates, so a second run only refits.
"""

from __future__ import annotations

import argparse
import pickle
import random
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.optimize import minimize

from bot.answer.engine import Engine
from bot.answer.extractive import QUOTE_CANDIDATE_CHUNKS, choose_quotes, clean_question
from bot.answer.sentence_scoring import (
    FEATURES,
    Candidate,
    Question,
    SentenceScorer,
    candidates,
    features,
)
from bot.evaluation import eval_corpus, load_questions


@dataclass(frozen=True)
class Asked:
    """One question as retrieval saw it: its candidates (with their vectors), which hold the
    answer, and whether the abstention policy turns it down. Kept (`--cache`) so that a
    change of the signals is measured without retrieving again."""

    question: str
    vector: np.ndarray
    spellings: dict[str, list[str]]
    found: list[Candidate]
    labels: np.ndarray
    abstained: bool


@dataclass(frozen=True)
class Group:
    """One question's candidates: their features, which hold the answer, their texts (to tell
    repeated sentences apart) and whether the question is turned down."""

    rows: np.ndarray
    labels: np.ndarray
    texts: list[str]
    abstained: bool

    @classmethod
    def of(cls, asked: Asked) -> Group:
        question = Question.of(asked.question, asked.vector, asked.spellings)
        return cls(
            features(question, asked.found),
            asked.labels,
            [c.text for c in asked.found],
            asked.abstained,
        )


def collect(engine: Engine, set_dir: Path, per_set: int) -> list[Asked]:
    """Candidates and labels for a sample of the set's questions."""
    corpus = eval_corpus(engine, [set_dir / "articles"])
    corpus.sync([set_dir / "articles"])
    retriever = engine.retriever(corpus)
    answerer = engine.answerer(retriever)
    questions = load_questions(set_dir)
    sample = random.Random(0).sample(questions, min(per_set, len(questions)))
    collected = []
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
        collected.append(
            Asked(
                question.question,
                retrieval.query_vector,
                retriever.spellings(question.question),
                found,
                labels,
                answerer.abstains(retrieval),
            )
        )
    return collected


def fit(groups: list[Group], columns: list[int], l2: float = 0.1) -> np.ndarray:
    """Conditional logit on the chosen columns: maximise, over the questions that have an
    answering candidate, the log of the softmax share of the answering candidates (a little
    L2). Ranking the candidates of one question is what the scorer is for, so it is fitted on
    exactly that, not on each sentence alone."""
    data = [(g.rows[:, columns], g.labels) for g in groups if g.labels.any()]

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        value, gradient = 0.5 * l2 * w @ w, l2 * w
        for x, y in data:
            scores = x @ w
            p = np.exp(scores - scores.max())
            p /= p.sum()
            held = p * y
            value -= np.log(held.sum())
            gradient = gradient - (held / held.sum() - p) @ x
        return value, gradient

    return minimize(loss, np.zeros(len(columns)), jac=True, method="L-BFGS-B").x


def first_share(groups: list[Group], columns: list[int], w: np.ndarray) -> float:
    """Share of questions, answered, whose best-scored candidate holds the answer."""
    hits = sum(
        bool(g.labels[int(np.argmax(g.rows[:, columns] @ w))])
        for g in groups
        if len(g.labels) and not g.abstained
    )
    return hits / max(len(groups), 1)


def quote_choice(groups: list[Group], scorer: SentenceScorer, closeness: float) -> str:
    """The quote choice's `any`, `first` and quotes per answered question."""
    any_hit = first_hit = quotes = answered = 0
    for g in groups:
        if g.abstained or not len(g.labels):
            continue
        chosen = choose_quotes(scorer.shares(g.rows), g.texts, 3, closeness)
        answered += 1
        quotes += len(chosen)
        any_hit += any(g.labels[n] for n in chosen)
        first_hit += bool(g.labels[chosen[0]])
    count = max(len(groups), 1)
    return f"{any_hit / count:6.3f} {first_hit / count:6.3f} {quotes / max(answered, 1):5.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sets", nargs="+", type=Path)
    parser.add_argument("--per-set", type=int, default=600)
    parser.add_argument("--cache", type=Path, help="a folder to keep the collected candidates in")
    args = parser.parse_args()

    engine = Engine.configured()
    data = {}
    for set_dir in args.sets:
        cached = args.cache / f"{set_dir.name}-{args.per_set}.pickle" if args.cache else None
        if cached is not None and cached.is_file():
            asked = pickle.loads(cached.read_bytes())
        else:
            asked = collect(engine, set_dir, args.per_set)
            if cached is not None:
                cached.parent.mkdir(parents=True, exist_ok=True)
                cached.write_bytes(pickle.dumps(asked))
        data[set_dir.name] = [Group.of(one) for one in asked]
    everything = list(range(len(FEATURES)))

    def held_out_weights(held_out: str, columns: list[int]) -> np.ndarray:
        train = [g for name, groups in data.items() if name != held_out for g in groups]
        return fit(train or data[held_out], columns)

    ceiling = {
        name: np.mean([g.labels.any() and not g.abstained for g in groups])
        for name, groups in data.items()
    }
    print("held-out share of questions whose best sentence holds the answer")
    print(f"{'signals':32} " + "  ".join(f"{name:>16}" for name in data))
    print(f"{'(any candidate holds it)':32} " + "  ".join(f"{ceiling[n]:16.3f}" for n in data))

    def report(label: str, columns: list[int]) -> None:
        shares = [
            first_share(groups, columns, held_out_weights(name, columns))
            for name, groups in data.items()
        ]
        print(f"{label:32} " + "  ".join(f"{share:16.3f}" for share in shares), flush=True)

    report("similarity alone", [0])
    for n, name in enumerate(FEATURES):
        if n:
            report(f"similarity + {name}", [0, n])
    report("all", everything)
    for n, name in enumerate(FEATURES):
        report(f"all but {name}", [c for c in everything if c != n])

    print("\nquote choice with the held-out weights: any first quotes/answer")
    for name, groups in data.items():
        scorer = SentenceScorer(tuple(held_out_weights(name, everything)))
        for closeness in (0.0, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 1.01):
            print(
                f"{name:24} closeness {closeness:4.2f}: {quote_choice(groups, scorer, closeness)}"
            )
    w = fit([g for groups in data.values() for g in groups], everything)
    print("\nfitted on every set:")
    print(f"weights=({', '.join(f'{v:.3f}' for v in w)})")


if __name__ == "__main__":
    main()
