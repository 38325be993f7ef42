"""Which retrieved sentence answers the question: a few signals with a clear meaning, weighed
by a conditional logistic scorer fitted on some evaluation sets and checked on another
(bench/answer_scorer.py).

Similarity alone quotes sentences that are on the question's topic: across languages the
sentences of one passage differ by a few hundredths of cosine similarity. The answer is the one
that also writes the question's words (in its script, or across languages in words a dictionary
translates to them: `index.dictionary`), its names (or their other-script spellings:
`index.aliases`), and what the question asks for (a date for "when", a number for "how many");
and read with its neighbour (the stored window vector of the pair) it still fits the question.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from index.dictionary import english_stems, stem, translations, word_translations
from index.lexical import lexical_tokens
from index.retrieval import SentenceVectors
from index.sentences import sentence_spans
from index.store import StoredChunk
from index.text import HAN_RUN, fold

# The signals, in the order of `SentenceScorer.weights`.
FEATURES = (
    "similarity",  # cosine similarity of sentence and question, less the best candidate's
    "overlap",  # share of the question's words the sentence writes or translates, rare ones
    # among the candidates weighing more
    "names",  # share of the question's names and numbers it or the sentence before it writes, in
    # either script
    "asked_type",  # the question asks when / how many and the sentence states a date / number
    "window",  # cosine similarity of the best window (sentence pair) holding the sentence,
    # less the best candidate's
    "most_words",  # 1 for the candidates that write the most of the question's words (by
    # `overlap`) among those that state what it asks for (`asked_type`)
    "nearest",  # 1 for the candidate nearest the question (by `similarity`) among those
)
# Measured and left out (bench/answer_scorer.py, held out on xquad-en-zh-dev / drcd-dev): the
# similarity of the sentence with its closer neighbour (+0.010 / -0.003 first-quote hits; the
# stored window vector, embedded as one text, does better: `window`) and the rank of its chunk
# in retrieval (-0.017 / +0.000); the e5 token states' alignment (each question token's best
# cosine among the sentence's tokens: +0.030 / -0.007 for the sentence alone, +0.018 / +0.003
# read in its chunk, for about 0.1 CPU-s a question to encode the candidates); lemmatised
# question words (-0.010 / 0.000) and one-character dictionary words (-0.035 / 0.000) for
# `overlap`; the neighbours' overlap or similarity, the place in the chunk and the length
# (none above +0.008 on one set without a loss on the other); a person (jieba's nr tags) for
# "who" and a place (ns) for "where", and a sentence opening with a pronoun (-0.003 / 0.000);
# the similarity with the question glossed word by word into the candidates' dictionary words
# (+0.007 / +0.002 on half of each set with the other half in the fit, for a second embedding);
# a learned weight for each dimension of the e5 similarity (fitted on half of the articles of
# each set): +0.02 to +0.04 on xquad for similarity alone, -0.003 to +0.001 with the other
# signals, whose words and names already carry what it learns. Also within noise: the
# similarity with the chunk's mean direction taken out of sentence and question (+0.008 /
# -0.004 on 612 / 1,500 questions), the question embedded as a passage (+0.005 / 0.000), the
# article's title read as part of every sentence for `overlap` and `names` (-0.010 / +0.003),
# jieba's words for a Chinese question instead of character bigrams (-0.006 / -0.008),
# gradient-boosted trees over the same signals (-0.011 / -0.005), and a question's Latin names
# found in the Chinese names of the candidates by their consonants (Jacksonville in 杰克逊维尔,
# Norman in 诺曼: 0.000 / +0.002, and +0.001 / +0.002 with half of xquad's articles in the fit),
# and an English word found through the dictionary's one- or two-word senses of the sentence's
# words (`chinese_words`, what BM25 searches for) instead of all their definitions: -0.003 / 0.000.

# "When" asks for a time at the head of a question or of its second part ("..., and when"); in
# a clause ("What does he do when ...") it does not. "How long" asks for a length or a
# duration, both stated with a number (1.2 公里, 七年): a quantity.
_FOLDED_TIME_QUESTION = re.compile(
    r"^\W*when\b|(?:,|\band|\bor)\s+when\b|\bwhat (?:year|month|day|date|time|century|decade|"
    r"period|era)\b|\bwhich (?:year|month|day|century|decade)\b|"
    r"何时|什么时候|什么时间|哪一?年|哪个?月|哪一?天|几年|何年|多久|多长时间|哪个时代|哪个世纪|何日"
)
_FOLDED_QUANTITY_QUESTION = re.compile(
    r"\bhow (?:many|much|far|big|large|long|old|tall|high|deep|wide|heavy|often)\b|"
    r"\bwhat (?:percentage|proportion|number|amount|share|population|size)\b|多少|几|多大|多长|"
    r"多高|多远|多重|多深|多宽|百分之|比例"
)
# A time: a year, month, day, season or era, or one said from today as news does (明天, 下周,
# 年底, "next week", "on Monday").
_TIME = re.compile(
    r"\d{1,4}\s*(?:年|月|日|世纪|年代)|[一二三四五六七八九十百〇零两]+\s*(?:年|月|日|世纪|年代)|"
    r"明年|去年|今年|前年|后年|春季|夏季|秋季|冬季|春天|夏天|秋天|冬天|初期|中期|末期|"
    r"今天|明天|昨天|后天|前天|今晚|明晚|昨晚|[上下本这]个?(?:周|星期|礼拜|月)|月[底初]|年[底初]|"
    r"(?:周|星期|礼拜)[一二三四五六日天]|"
    r"\b(?:1[0-9]|20)\d{2}s?\b|\b(?:january|february|march|april|may|june|july|august|"
    r"september|october|november|december|spring|summer|autumn|winter|century|today|tomorrow|"
    r"yesterday|tonight|monday|tuesday|wednesday|thursday|friday|saturday|sunday)\b|"
    r"\b(?:next|last|this) (?:week|month|year)\b"
)
# A number: digits, two or more Chinese numerals, or one before a measure word (not the 一 of
# 一种 "a kind of" or of 统一).
_NUMBER = re.compile(
    r"\d|[零〇一二两三四五六七八九十百千万亿]{2,}|"
    r"[一二两三四五六七八九十百千万亿][个位名人次年岁倍件条座所项支家只头张本部间元米里吨度分秒成]"
)
_LATIN_NAME = re.compile(r"(?<![A-Za-z])[A-Za-z]*[A-Z0-9][A-Za-z0-9.-]*")
_QUOTED = re.compile(r"[「『《“\"]([^」』》”\"]{1,40})[」』》”\"]")
_LATIN_TOKEN = re.compile(r"[a-z0-9]+")


@dataclass(frozen=True)
class Candidate:
    """A sentence of a retrieved chunk, and the sentence before it in the chunk (`previous`),
    which often names who "he" or "it" is."""

    chunk: StoredChunk
    text: str
    vector: np.ndarray
    previous: str = ""
    windows: np.ndarray | None = None  # vectors of the windows (adjacent pairs) holding it


@dataclass(frozen=True)
class Question:
    """What the scorer reads of a question once: its vector, words (BM25 tokens), names, the
    other-script spellings of its words and names (`spelled`), and asked type."""

    vector: np.ndarray
    tokens: tuple[str, ...]
    names: tuple[str, ...]
    spelled: dict[str, tuple[str, ...]]
    asks_time: bool
    asks_quantity: bool

    @classmethod
    def of(
        cls, text: str, vector: np.ndarray, spellings: Mapping[str, Sequence[str]] | None = None
    ) -> Question:
        """`spellings`: each of the question's names retrieval found spelled in another script
        (`Retriever.spellings`) -> those spellings. A Chinese name among them is one of the
        question's names too; each word of a Latin one (alexandr, wang) is written where a
        spelling of the whole (汪滔) is."""
        spellings = spellings or {}
        names = question_names(text)
        names += tuple(name for name in map(fold, spellings) if HAN_RUN.fullmatch(name))
        spelled: dict[str, tuple[str, ...]] = {}
        for name, spelled_as in spellings.items():
            folded = fold(name)
            for key in {folded, *folded.split(), *lexical_tokens(folded)}:
                spelled[key] = tuple(dict.fromkeys((*spelled.get(key, ()), *map(fold, spelled_as))))
        folded_text = fold(text)
        return cls(
            vector=vector,
            tokens=tuple(dict.fromkeys(lexical_tokens(text))),
            names=tuple(dict.fromkeys(names)),
            spelled=spelled,
            asks_time=bool(_FOLDED_TIME_QUESTION.search(folded_text)),
            asks_quantity=bool(_FOLDED_QUANTITY_QUESTION.search(folded_text)),
        )


def question_names(text: str) -> tuple[str, ...]:
    """The names and numbers a question writes, folded: Latin words with a capital or a digit
    (not the first word), and what it quotes."""
    text = unicodedata.normalize("NFKC", text)
    words = [match.group() for match in _LATIN_NAME.finditer(text)]
    first = re.match(r"\s*([A-Za-z]+)", text)
    if first and words and words[0] == first.group(1) and not any(c.isdigit() for c in words[0]):
        words = words[1:]  # "What ..." / "When ...": the sentence's capital, not a name
    names = [word.strip(".-") for word in words if len(word.strip(".-")) > 1 or word.isdigit()]
    names += _QUOTED.findall(text)
    return tuple(dict.fromkeys(fold(name) for name in names if name))


def candidates(chunks: Sequence[StoredChunk], stored: Sequence[SentenceVectors]) -> list[Candidate]:
    """The stored sentences of `chunks` (ranked), in passage order, each with the one before."""
    by_chunk: dict[str, dict[str, SentenceVectors]] = {}
    for sentence in stored:
        by_chunk.setdefault(sentence.chunk_id, {})[sentence.text] = sentence
    found = []
    for chunk in chunks:
        own = by_chunk.get(chunk.chunk_id, {})
        texts = [chunk.text[span.start : span.end] for span in sentence_spans(chunk.text)]
        ordered = [text for text in texts if text in own]
        for position, text in enumerate(ordered):
            previous = ordered[position - 1] if position else ""
            found.append(Candidate(chunk, text, own[text].vector, previous, own[text].windows))
    return found


def features(question: Question, found: Sequence[Candidate]) -> np.ndarray:
    """One row of `FEATURES` per candidate."""
    if not found:
        return np.zeros((0, len(FEATURES)))
    similarity = np.array([float(c.vector @ question.vector) for c in found])
    window = np.array(
        [
            float((c.windows @ question.vector).max())
            if c.windows is not None and len(c.windows)
            else float(c.vector @ question.vector)
            for c in found
        ]
    )
    translate = any(_LATIN_TOKEN.fullmatch(word) for word in (*question.tokens, *question.names))
    read = _Reader(translate)
    sentences = [read(c.text) for c in found]
    written = _writes(question.tokens, sentences, question.spelled)
    weights = np.log((len(found) + 1) / (written.sum(axis=0) + 1))
    names = _names_written(question, sentences, [read(c.previous) for c in found])
    overlap = written @ weights / (weights.sum() or 1.0)
    asked_type = np.array([_asked_type(question, sentence.folded) for sentence in sentences])
    can_answer = asked_type >= asked_type.max()
    return np.column_stack(
        [
            similarity - similarity.max(),
            overlap,
            names.mean(axis=1) if names.shape[1] else np.zeros(len(found)),
            asked_type,
            window - window.max(),
            _tops(overlap, can_answer),
            _tops(similarity, can_answer),
        ]
    )


def _tops(signal: np.ndarray, among: np.ndarray) -> np.ndarray:
    """1 where a candidate tops the others `among` those that could answer (they state a
    date or a number when asked for one) on a signal. The linear weights of the signals let a
    sentence middling on both outscore one that is best on one of them; the sentence that
    writes the most of the question's words, or is the nearest, answers more often than its
    values alone say. A tie of every candidate carries nothing (a constant, which the softmax
    ignores)."""
    best = signal[among].max()
    return (among & (signal >= best)).astype(float)


@dataclass(frozen=True)
class _Read:
    """What the word signals read of one sentence: its folded text, BM25 tokens, the stems of
    the English words it writes (`english`: what a Chinese question word's translations are
    looked for in) and, when the question writes Latin words, the English stems it writes or
    translates to."""

    folded: str
    tokens: frozenset[str]
    english: frozenset[str]
    stems: frozenset[str]

    def __or__(self, other: _Read) -> _Read:
        return _Read(
            f"{self.folded}\n{other.folded}",
            self.tokens | other.tokens,
            self.english | other.english,
            self.stems | other.stems,
        )


class _Reader:
    """Reads sentences once each (a candidate's previous sentence is another candidate)."""

    def __init__(self, translate: bool) -> None:
        self._translate = translate
        self._read: dict[str, _Read] = {}

    def __call__(self, text: str) -> _Read:
        if (known := self._read.get(text)) is None:
            folded = fold(text)
            english = frozenset(english_stems(folded))
            stems = translations(folded) | english if self._translate else frozenset()
            known = _Read(folded, frozenset(lexical_tokens(folded)), english, frozenset(stems))
            self._read[text] = known
        return known


def _writes(
    words: Sequence[str], sentences: Sequence[_Read], spelled: Mapping[str, Sequence[str]]
) -> np.ndarray:
    """Which of these (folded) words each sentence writes as they are, in another script
    (`spelled`: 汪滔 for alexandr), or across languages through the dictionary: a Latin word in
    Chinese words that translate to it, a Chinese word (推出) in English words it translates to
    (introduced). `overlap` weighs each word by its inverse document frequency among the
    candidates, so a word every candidate writes (the topic) counts for nothing and the words
    that set the answer apart count most."""
    stems = [stem(word) if _LATIN_TOKEN.fullmatch(word) else None for word in words]
    meanings = [
        word_translations(word) if HAN_RUN.fullmatch(word) else frozenset() for word in words
    ]
    found = np.zeros((len(sentences), len(words)), dtype=bool)
    for row, sentence in enumerate(sentences):
        for column, (word, word_stem) in enumerate(zip(words, stems, strict=True)):
            found[row, column] = (
                word in sentence.tokens
                or word_stem in sentence.stems
                or not meanings[column].isdisjoint(sentence.english)
                or any(other in sentence.folded for other in spelled.get(word, ()))
            )
    return found


def _names_written(
    question: Question, sentences: Sequence[_Read], previous: Sequence[_Read]
) -> np.ndarray:
    """Which of the question's names and numbers each sentence, or the sentence before it (who
    "he" is), writes: as the question does, in another script (汪滔 for Alexandr Wang), or in
    Chinese the dictionary translates (the dictionary's 牛顿 for Newton)."""
    pairs = [before | sentence for sentence, before in zip(sentences, previous, strict=True)]
    names = _writes(question.names, pairs, question.spelled)
    return names | np.array(
        [[name in pair.folded for name in question.names] for pair in pairs], dtype=bool
    ).reshape(names.shape)


def _asked_type(question: Question, folded_sentence: str) -> float:
    """1 when the question asks for a date or a quantity and the sentence states one, 0 when it
    asks and the sentence has none, 0.5 when the question asks for neither."""
    if question.asks_time:
        return float(bool(_TIME.search(folded_sentence)))
    if question.asks_quantity:
        return float(bool(_NUMBER.search(folded_sentence)))
    return 0.5


@dataclass(frozen=True)
class SentenceScorer:
    """A conditional logit over `FEATURES`: each candidate's share of the chance that it is the
    sentence that answers, among one question's candidates (a softmax of the weighted signals;
    fitted so, the shares of two candidates compare, which the choice of a second quote needs).
    """

    weights: tuple[float, ...]

    def shares(self, rows: np.ndarray) -> np.ndarray:
        if not len(rows):
            return np.zeros(0)
        scores = rows @ np.asarray(self.weights)
        exp = np.exp(scores - scores.max())
        return exp / exp.sum()


# Fitted with `bench/answer_scorer.py --per-set 600` on 600 questions each of xquad-en-zh-dev and
# drcd-dev. Held out (fitted on the other set), the best sentence holds the answer for 0.708 of
# xquad's questions and 0.855 of drcd's (0.683 / 0.850 without `most_words` and `nearest`;
# 0.708 / 0.855 too with them taken among all the candidates, but a "how much" question then
# leads with the sentence that names what it asks about and states no amount),
# against 0.562 / 0.817 for similarity alone; some candidate holds it for 0.960 / 0.972.
SENTENCE_SCORER = SentenceScorer(weights=(20.936, 5.880, 1.018, 1.169, 26.654, 0.836, 1.159))
