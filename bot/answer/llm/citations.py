"""The citation check: does each sentence of a generated answer say only what it cites?

Each sentence must cite at least one passage that was given (`[n]`, out-of-range numbers are
removed), and the names and numbers it states must appear in the passages it cites, compared
after width (NFKC), case and Traditional/Simplified folding; numbers by value, so "6,000億" and
"600 billion" agree. A sentence failing this is dropped, except that a name missing from a
passage in another language, in a sentence otherwise anchored in that passage (another of its
names or numbers is there), is kept and reported as unverified: it may be a translation.
What survives is renumbered in order of first use, so the text and the Sources always agree.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from bot.answer.llm.text import Language, language_of
from index.sentences import excerpt, sentence_spans
from index.store import StoredChunk
from index.text import HAN, HAN_RUN, fold, jieba_tagger, unwrap

Verdict = Literal["supported", "unverified", "unsupported", "uncited"]
# Sentences quoted from a passage as the evidence for the sentences citing it.
_QUOTE_SENTENCES = 3

_MARKER = r"[\[［【]\s*(\d+(?:\s*[,，、]\s*\d+)*)\s*[\]］】]"
_MARKER_GROUP = re.compile(_MARKER)
_SPACED_MARKER = re.compile(r"(\s*)" + _MARKER)
_LEADING_MARKERS = re.compile(rf"^(?:\s*{_MARKER})+")
_CJK_TERMINATOR = re.compile(r"[。！？；][」』”’)）]*$")
_NUMBER = re.compile(
    r"(?<![\d.])(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d+))?(?!\d)"
    r"(?:\s*([萬万億亿兆]|(?:thousand|million|billion|trillion)\b))?",
    re.IGNORECASE,
)
_SCALES = {
    "萬": 10**4,
    "万": 10**4,
    "億": 10**8,
    "亿": 10**8,
    "兆": 10**12,
    "thousand": 10**3,
    "million": 10**6,
    "billion": 10**9,
    "trillion": 10**12,
}
_LATIN_WORD = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:[-.&][A-Za-z0-9]+)*")
_POSSESSIVE = re.compile(r"['’]s\b")
# jieba's tags for people, places, organisations and other proper nouns.
_PROPER_NOUN_TAGS = frozenset({"nr", "nrfg", "nrt", "ns", "nt", "nz"})
_QUOTED = re.compile(r"[「『《“\"]([^」』》”\"]{1,40})[」』》”\"]")
# A translation the rules allow after a name written as in the passage: 查克柏格 (Zuckerberg).
_TRANSLATION = re.compile(rf"([{HAN}]+)\s*[(（]([^()（）]{{1,60}})[)）]")


@dataclass(frozen=True)
class SentenceCheck:
    """One sentence of the answer and the verdict on it.

    `cited` are the passage numbers (as given to the model) it cites that exist,
    `out_of_range` those that do not, `terms` the names and numbers it states, and `missing`
    those not found in the passages it cites.
    """

    text: str
    line: int
    cited: tuple[int, ...]
    out_of_range: tuple[int, ...]
    terms: tuple[str, ...]
    missing: tuple[str, ...]
    verdict: Verdict

    @property
    def kept(self) -> bool:
        """Whether the sentence stays in the answer."""
        return self.verdict in ("supported", "unverified")


@dataclass(frozen=True)
class CitationCheck:
    """The verdicts on every sentence of a reply, and whether the reply repeated the rules."""

    sentences: list[SentenceCheck]
    leaked_instructions: bool = False

    @property
    def kept(self) -> list[SentenceCheck]:
        """The sentences that stay."""
        return [sentence for sentence in self.sentences if sentence.kept]

    @property
    def passes(self) -> bool:
        """Whether enough survives to answer: at least one sentence and half of them, and no
        sign that the model followed instructions other than the rules."""
        kept = len(self.kept)
        return not self.leaked_instructions and kept > 0 and 2 * kept >= len(self.sentences)


def check_citations(answer: str, passages: Sequence[StoredChunk]) -> list[SentenceCheck]:
    """Verdicts on each sentence of `answer`, whose `[n]` refer to `passages` numbered from 1."""
    evidence = [_Evidence.of(chunk) for chunk in passages]
    checks = []
    for text, line in _sentences(answer):
        numbers = [
            int(n) for group in _MARKER_GROUP.findall(text) for n in re.findall(r"\d+", group)
        ]
        cited = tuple(dict.fromkeys(n for n in numbers if 1 <= n <= len(passages)))
        out_of_range = tuple(dict.fromkeys(n for n in numbers if not 1 <= n <= len(passages)))
        claim = _MARKER_GROUP.sub(" ", text)
        cited_evidence = [evidence[n - 1] for n in cited]
        terms, missing, verdict = _judge(claim, cited_evidence)
        checks.append(SentenceCheck(text, line, cited, out_of_range, terms, missing, verdict))
    return checks


def renumber(kept: Sequence[SentenceCheck]) -> tuple[str, list[int]]:
    """The kept sentences with markers renumbered by first use (others removed), and the
    passages they cite in that order."""
    order = list(dict.fromkeys(n for sentence in kept for n in sentence.cited))
    new_number = {n: i for i, n in enumerate(order, start=1)}

    def replace(match: re.Match[str]) -> str:
        markers = "".join(
            f"[{new_number[int(n)]}]" for n in re.findall(r"\d+", match[2]) if int(n) in new_number
        )
        return match[1] + markers if markers else ""

    text = ""
    for index, sentence in enumerate(kept):
        rewritten = _SPACED_MARKER.sub(replace, sentence.text).strip()
        if index and kept[index - 1].line != sentence.line:
            text += "\n"
        elif index and not _CJK_TERMINATOR.search(_MARKER_GROUP.sub("", text).rstrip()):
            text += " "
        text += rewritten
    return text, order


def supporting_quote(chunk: StoredChunk, terms: Sequence[str]) -> str:
    """The passage's sentences that state the most of `terms` (at least half as many as the
    best one), in passage order; the whole passage when none states any."""
    folded_terms = [fold(term) for term in terms]
    spans = sentence_spans(chunk.text)
    hits = [
        sum(term in fold(chunk.text[span.start : span.end]) for term in folded_terms)
        for span in spans
    ]
    most = max(hits, default=0)
    if not most:
        return unwrap(chunk.text.strip())
    ranked = sorted(
        (i for i, count in enumerate(hits) if 2 * count >= most), key=lambda i: -hits[i]
    )
    return excerpt(chunk.text, [spans[i] for i in ranked[:_QUOTE_SENTENCES]])


@dataclass(frozen=True)
class _Evidence:
    """A passage as the check reads it: folded text (with title and date), its numbers by
    value, and its language."""

    folded: str
    numbers: frozenset[Decimal]
    language: Language

    @classmethod
    def of(cls, chunk: StoredChunk) -> _Evidence:
        text = f"{chunk.title}\n{chunk.date or ''}\n{chunk.text}"
        values = frozenset(value for _, found in _numbers(text) for value in found)
        return cls(fold(text), values, language_of(chunk.text))


def _judge(
    claim: str, cited: Sequence[_Evidence]
) -> tuple[tuple[str, ...], tuple[str, ...], Verdict]:
    """(terms, missing terms, verdict) for a claim against the passages it cites."""
    claim = unicodedata.normalize("NFKC", claim)
    numbers = _numbers(claim)
    names = _names(claim)
    terms = tuple(dict.fromkeys([*(text for text, _ in numbers), *names]))
    if not cited:
        return terms, (), "uncited"
    known_numbers = frozenset().union(*(evidence.numbers for evidence in cited))
    missing_numbers = [text for text, values in numbers if not values & known_numbers]
    translated = _translated_names(claim, cited)
    missing_names = [
        name
        for name in names
        if name not in translated and not any(fold(name) in e.folded for e in cited)
    ]
    missing = tuple(dict.fromkeys([*missing_numbers, *missing_names]))
    if missing_numbers:
        return terms, missing, "unsupported"
    if missing_names:
        same_language = any(evidence.language == language_of(claim) for evidence in cited)
        anchored = len(missing) < len(terms)  # something it states is in the passage
        return terms, missing, "unverified" if anchored and not same_language else "unsupported"
    return terms, missing, "supported"


def _numbers(text: str) -> list[tuple[str, frozenset[Decimal]]]:
    """Each number in the text as written, with its values: as written and scaled by a
    following 萬/億/million/… ("6,000億" is 6000 and 6×10¹¹)."""
    found = []
    for match in _NUMBER.finditer(unicodedata.normalize("NFKC", text)):
        value = Decimal(match[1].replace(",", "") + (f".{match[2]}" if match[2] else ""))
        values = {value}
        if match[3]:
            values.add(value * _SCALES[match[3].lower()])
        found.append((match[0].strip(), frozenset(values)))
    return found


def _names(claim: str) -> list[str]:
    """The names a claim states: Latin words with a capital or a digit (not an English
    sentence's first word), Han text in an English sentence, and in a Chinese one what is
    quoted and the proper nouns (people, places, organisations) jieba tags."""
    english = language_of(claim) == "en"
    names = []
    words = list(_LATIN_WORD.finditer(_POSSESSIVE.sub("", claim)))
    for index, word in enumerate(words):
        text = word[0].rstrip(".")
        capitalised = any(c.isupper() for c in text[1:]) or (
            text[0].isupper() and not (english and index == 0)
        )
        if len(text) > 1 and (capitalised or any(c.isdigit() for c in text)):
            names.append(text)
    if english:
        names += HAN_RUN.findall(claim)
    else:
        names += [quoted.strip() for quoted in _QUOTED.findall(claim) if quoted.strip()]
        names += _chinese_proper_nouns(claim)
    return list(dict.fromkeys(names))


def _chinese_proper_nouns(claim: str) -> list[str]:
    """Proper nouns of Chinese text (jieba's part-of-speech tags), in folded form."""
    return [
        word
        for word, flag in jieba_tagger().cut(fold(claim))
        if flag in _PROPER_NOUN_TAGS and len(word) > 1 and HAN_RUN.fullmatch(word)
    ]


def _translated_names(claim: str, cited: Sequence[_Evidence]) -> set[str]:
    """Names inside parentheses right after Han text the cited passages contain: the
    translations the rules ask for (查克柏格 (Zuckerberg))."""
    translated: set[str] = set()
    for match in _TRANSLATION.finditer(claim):
        if any(fold(match[1]) in evidence.folded for evidence in cited):
            translated.update(word[0].rstrip(".") for word in _LATIN_WORD.finditer(match[2]))
    return translated


def _sentences(answer: str) -> list[tuple[str, int]]:
    """The answer's sentences with their line numbers; a marker that opens a sentence ("Qwen.
    [1] It…") is moved back to the sentence it closes."""
    sentences: list[tuple[str, int]] = []
    for span in sentence_spans(answer):
        text = answer[span.start : span.end]
        line = answer.count("\n", 0, span.start)
        leading = _LEADING_MARKERS.match(text)
        if leading and sentences:
            previous, previous_line = sentences[-1]
            space = "" if _CJK_TERMINATOR.search(previous) else " "
            sentences[-1] = (previous + space + leading[0].strip(), previous_line)
            text = text[leading.end() :].strip()
        if text:
            sentences.append((text, line))
    return sentences
