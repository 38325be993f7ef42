"""BM25 over chunks with a tokenizer for Chinese and Latin script, beside the dense vectors.

Text is folded first (`index.text.fold`: width, case, Traditional to Simplified); Chinese is then
cut into character bigrams, which need no dictionary and match names and terms exactly, and
Latin-script text into words.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import numpy as np

from index.aliases import AliasTable, NameMentions, build_aliases, name_mentions
from index.sentences import sentence_spans
from index.text import HAN_RUN, fold, mostly_chinese

_WORD = re.compile(r"[^\W_]+", re.UNICODE)
# English function words carry no evidence; in a mixed-language corpus they would make every
# English article a lexical match for every English question. This is bm25s's (0.3)
# STOPWORDS_EN_PLUS, NLTK's English list, kept here because it is part of the tokenizer (a
# change is a `_CACHE_VERSION` bump) and so that tokenizing a question never imports bm25s.
_ENGLISH_STOPWORD_TEXT = """
    a about above after again against ain all am an and any are aren aren't as at be because
    been before being below between both but by can couldn couldn't d did didn didn't do does
    doesn doesn't doing don don't down during each few for from further had hadn hadn't has
    hasn hasn't have haven haven't having he her here hers herself him himself his how i if in
    into is isn isn't it it's its itself just ll m ma me mightn mightn't more most mustn
    mustn't my myself needn needn't no nor not now o of off on once only or other our ours
    ourselves out over own re s same shan shan't she she's should should've shouldn shouldn't
    so some such t than that that'll the their theirs them themselves then there these they
    this those through to too under until up ve very was wasn wasn't we were weren weren't
    what when where which while who whom why will with won won't wouldn wouldn't y you you'd
    you'll you're you've your yours yourself yourselves
"""
ENGLISH_STOPWORDS = frozenset(_ENGLISH_STOPWORD_TEXT.split())


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
# 5: the BM25 weights saved by Citebot (`_TermWeights`), not as a bm25s model.
_CACHE_VERSION = "5"
_WEIGHTS_FILE = "bm25.npz"


def fingerprint(chunk_ids: Sequence[str]) -> str:
    """Identifies a set of chunks and the cache format: a saved index is valid while this
    matches."""
    key = "\n".join([_CACHE_VERSION, *sorted(chunk_ids)])
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class _TermWeights:
    """Each token's BM25 weight in each chunk holding it, by token (compressed sparse columns):
    token t is in chunks `indices[indptr[t]:indptr[t + 1]]` with weights `data[...]` there.

    bm25s computes them when an index is built; a search only sums them, so this is all a
    saved index holds, and loading one and answering a question never import bm25s (nor the
    SciPy it imports, together a third of a second of each `citebot ask`)."""

    data: np.ndarray
    indices: np.ndarray
    indptr: np.ndarray

    @classmethod
    def none(cls) -> _TermWeights:
        """The weights of an index without chunks."""
        return cls(np.zeros(0, np.float32), np.zeros(0, np.int32), np.zeros(1, np.int64))

    def scores(self, token_ids: Sequence[int], chunks: int) -> np.ndarray:
        """Each chunk's BM25 score for the query's tokens (a token asked twice counts twice),
        summed in float32 in token order as bm25s's own search does, so scores and ties are
        the same as its."""
        ids = np.asarray(token_ids, dtype=np.int32)
        scores = np.zeros(chunks, dtype=np.float32)
        for start, end in zip(self.indptr[ids], self.indptr[ids + 1], strict=True):
            np.add.at(scores, self.indices[start:end], self.data[start:end])
        return scores


class LexicalIndex:
    """A BM25 index of chunk texts, with what else is read off the same texts once per index
    run (the alias table; whether most of them write Chinese), saved to and loaded from a
    folder."""

    def __init__(
        self,
        chunk_ids: list[str],
        weights: _TermWeights,
        vocabulary: dict[str, int],
        aliases: AliasTable,
        writes_chinese: bool,
    ) -> None:
        self._chunk_ids = chunk_ids
        self._weights = weights
        self._vocabulary = vocabulary
        self.aliases = aliases
        self.writes_chinese = writes_chinese
        self.fingerprint = fingerprint(chunk_ids)

    @property
    def chunk_ids(self) -> list[str]:
        """The chunks this index holds (the live ones when it was built)."""
        return self._chunk_ids

    @classmethod
    def build(
        cls,
        chunk_ids: Sequence[str],
        texts: Sequence[str],
        mentions: Sequence[NameMentions] | None = None,
    ) -> LexicalIndex:
        """Tokenize and index every chunk, in chunk-id order, so equal scores rank the same
        however the store listed the chunks. `mentions` are the chunks' names as tagged when
        they were stored (`index.aliases`); without them the texts are tagged now."""
        if mentions is None:
            mentions = [name_mentions(text) for text in texts]
        rows = sorted(zip(chunk_ids, texts, mentions, strict=True), key=lambda row: row[0])
        chunk_ids = [row[0] for row in rows]
        texts = [row[1] for row in rows]
        vocabulary: dict[str, int] = {}
        corpus = [
            [vocabulary.setdefault(token, len(vocabulary)) for token in lexical_tokens(text)]
            for text in texts
        ]
        weights = _TermWeights.none()
        if chunk_ids:
            bm25s = _bm25s()
            model = bm25s.BM25()
            model.index(
                bm25s.tokenization.Tokenized(ids=corpus, vocab=vocabulary), show_progress=False
            )
            scores = model.scores
            weights = _TermWeights(scores["data"], scores["indices"], scores["indptr"])
        aliases = build_aliases(row[2] for row in rows)
        return cls(chunk_ids, weights, vocabulary, aliases, mostly_chinese(texts))

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        weights = self._weights
        np.savez(
            folder / _WEIGHTS_FILE,
            data=weights.data,
            indices=weights.indices,
            indptr=weights.indptr,
        )
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
            with np.load(folder / _WEIGHTS_FILE) as saved:
                weights = _TermWeights(saved["data"], saved["indices"], saved["indptr"])
            aliases = AliasTable.from_json(meta["aliases"])
        except (
            OSError,
            EOFError,
            ValueError,
            KeyError,
            TypeError,
            AttributeError,
            zipfile.BadZipFile,
        ):
            return None
        return cls(
            meta["chunk_ids"], weights, meta["vocabulary"], aliases, bool(meta["writes_chinese"])
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
        scores = self._weights.scores(ids, len(self._chunk_ids))
        top = np.argsort(-scores, kind="stable")[: min(k, len(scores))]  # ties: chunk-id order
        return [(self._chunk_ids[i], float(scores[i])) for i in top if scores[i] > 0]


def _bm25s() -> ModuleType:
    """bm25s, imported when an index is built: it imports SciPy, and sets its own logger to
    DEBUG at import, which would print its progress notes; warnings only."""
    import bm25s

    logging.getLogger("bm25s").setLevel(logging.WARNING)
    return bm25s
