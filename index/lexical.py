"""BM25 over chunks with a tokenizer for Chinese and Latin script, beside the dense vectors.

Text is folded first (`index.text.fold`: width, case, Traditional to Simplified); Chinese is then
cut into character bigrams, which need no dictionary and match names and terms exactly, and
Latin-script text into words.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from pathlib import Path

import bm25s
import bm25s.stopwords
import numpy as np

from index.aliases import AliasTable, build_aliases
from index.sentences import sentence_spans
from index.text import HAN_RUN, fold, mostly_chinese

_WORD = re.compile(r"[^\W_]+", re.UNICODE)
# English function words carry no evidence; in a mixed-language corpus they would make every
# English article a lexical match for every English question.
ENGLISH_STOPWORDS = frozenset(bm25s.stopwords.STOPWORDS_EN_PLUS)


def lexical_tokens(text: str) -> list[str]:
    """Tokens for BM25: CJK character bigrams (a lone character stands alone) and words,
    English stopwords left out."""
    folded = fold(text)
    tokens: list[str] = []
    position = 0
    for run in HAN_RUN.finditer(folded):
        tokens.extend(_words(folded, position, run.start()))
        chars = run.group()
        tokens.extend(
            [chars] if len(chars) == 1 else [chars[i : i + 2] for i in range(len(chars) - 1)]
        )
        position = run.end()
    tokens.extend(_words(folded, position, len(folded)))
    return tokens


def window_overlap(query: str, title: str, text: str, sentences: int = 3) -> float:
    """The largest share of the query's tokens that one stretch of `sentences` consecutive
    sentences of `text` (with the title) contains.

    A passage that answers a question shares most of its words in one place; a long chunk
    shares many of them with any question on its topic, scattered over its paragraphs.
    """
    asked = set(lexical_tokens(query))
    if not asked:
        return 0.0
    pieces = [text[span.start : span.end] for span in sentence_spans(text)] or [text]
    windows = [
        "".join(pieces[n : n + sentences]) for n in range(max(len(pieces) - sentences + 1, 1))
    ]
    return max(
        len(asked & set(lexical_tokens(f"{title}\n{window}"))) / len(asked) for window in windows
    )


def _words(text: str, start: int, end: int) -> list[str]:
    return [word for word in _WORD.findall(text, start, end) if word not in ENGLISH_STOPWORDS]


# Bump when `lexical_tokens` or what a saved index holds changes, so older ones are rebuilt.
_CACHE_VERSION = "4"


def fingerprint(chunk_ids: Sequence[str]) -> str:
    """Identifies a set of chunks and the cache format: a saved index is valid while this
    matches."""
    key = "\n".join([_CACHE_VERSION, *sorted(chunk_ids)])
    return hashlib.sha256(key.encode()).hexdigest()


class LexicalIndex:
    """A BM25 index of chunk texts, with what else is read off the same texts once per index
    run (the alias table; whether most of them write Chinese), saved to and loaded from a
    folder."""

    def __init__(
        self,
        chunk_ids: list[str],
        model: bm25s.BM25,
        vocabulary: dict[str, int],
        aliases: AliasTable,
        writes_chinese: bool,
    ) -> None:
        self._chunk_ids = chunk_ids
        self._model = model
        self._vocabulary = vocabulary
        self.aliases = aliases
        self.writes_chinese = writes_chinese
        self.fingerprint = fingerprint(chunk_ids)

    @property
    def chunk_ids(self) -> list[str]:
        """The chunks this index holds (the live ones when it was built)."""
        return self._chunk_ids

    @classmethod
    def build(cls, chunk_ids: Sequence[str], texts: Sequence[str]) -> LexicalIndex:
        """Tokenize and index every chunk, in chunk-id order, so equal scores rank the same
        however the store listed the chunks."""
        pairs = sorted(zip(chunk_ids, texts, strict=True))
        chunk_ids, texts = [pair[0] for pair in pairs], [pair[1] for pair in pairs]
        vocabulary: dict[str, int] = {}
        corpus = [
            [vocabulary.setdefault(token, len(vocabulary)) for token in lexical_tokens(text)]
            for text in texts
        ]
        model = bm25s.BM25()
        if chunk_ids:
            model.index(
                bm25s.tokenization.Tokenized(ids=corpus, vocab=vocabulary), show_progress=False
            )
        return cls(chunk_ids, model, vocabulary, build_aliases(texts), mostly_chinese(texts))

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        if self._chunk_ids:
            self._model.save(str(folder), show_progress=False)
        meta = {
            "chunk_ids": self._chunk_ids,
            "vocabulary": self._vocabulary,
            "aliases": self.aliases.to_json(),
            "writes_chinese": self.writes_chinese,
        }
        (folder / "citebot.json").write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, folder: Path) -> LexicalIndex | None:
        """The saved index, or None when there is none or it cannot be read."""
        try:
            meta = json.loads((folder / "citebot.json").read_text(encoding="utf-8"))
            model = (
                bm25s.BM25.load(str(folder), show_progress=False)
                if meta["chunk_ids"]
                else bm25s.BM25()
            )
            aliases = AliasTable.from_json(meta["aliases"])
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None
        return cls(
            meta["chunk_ids"], model, meta["vocabulary"], aliases, bool(meta["writes_chinese"])
        )

    def coverage(self, query: str) -> float:
        """Share of the query's tokens that occur in the corpus: how much BM25 can say about it.

        An English question over Chinese articles shares only names with them, if anything.
        """
        tokens = lexical_tokens(query)
        return sum(token in self._vocabulary for token in tokens) / len(tokens) if tokens else 0.0

    def search(self, query: str, k: int) -> list[tuple[str, float]]:
        """The `k` best chunk ids for the query with their BM25 scores; none without overlap."""
        ids = [
            self._vocabulary[token] for token in lexical_tokens(query) if token in self._vocabulary
        ]
        if not ids or not self._chunk_ids:
            return []
        scores = self._model.get_scores(ids)
        top = np.argsort(-scores, kind="stable")[: min(k, len(scores))]  # ties: chunk-id order
        return [(self._chunk_ids[i], float(scores[i])) for i in top if scores[i] > 0]
