"""Sentence splitting for Chinese and English text, as character spans into the original."""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from index.text import unwrap

_CLOSERS = "」』”’\"'）)］]】》〉"
# Chinese terminators (and ! ? anywhere), optionally followed by closing quotes or brackets.
_CJK_END = re.compile(rf"(?:[。！？；!?]+|…+|\.{{3,}})[{re.escape(_CLOSERS)}]*")
# An English full stop that ends a sentence: after a lowercase letter, digit or closer, before
# whitespace. An uppercase letter before it ("U.S. ") is an initial, not an end.
_LATIN_END = re.compile(rf"(?<=[a-z0-9{re.escape(_CLOSERS)}])\.[{re.escape(_CLOSERS)}]*(?=\s)")
_ABBREVIATIONS = frozenset(
    [
        "mr",
        "mrs",
        "ms",
        "dr",
        "prof",
        "st",
        "jr",
        "sr",
        "vs",
        "etc",
        "inc",
        "ltd",
        "co",
        "corp",
        "no",
        "fig",
        "e.g",
        "i.e",
        "a.m",
        "p.m",
        "approx",
        "dept",
    ]
)
# A short bracketed piece after a sentence ("(AP)", "(美聯社)") is its attribution.
_ATTRIBUTION = re.compile(r"^[(（\[【][^()（）]{1,12}[)）\]】]$")
_PARAGRAPH_BREAK = re.compile(r"\n[ \t\u3000]*\n")
_HARD_WRAP_MIN_CHARS = 60
_CLAUSE_END = re.compile(r"[，,、；;：:]")


@dataclass(frozen=True)
class Span:
    """A half-open character range `[start, end)` of a text, with its paragraph number."""

    start: int
    end: int
    paragraph: int


def paragraph_spans(text: str) -> list[tuple[int, int]]:
    """Blank-line separated paragraphs as `(start, end)` ranges, surrounding whitespace trimmed."""
    spans = []
    position = 0
    for match in [*_PARAGRAPH_BREAK.finditer(text), None]:
        end = match.start() if match else len(text)
        trimmed = _trim(text, position, end)
        if trimmed:
            spans.append(trimmed)
        if match:
            position = match.end()
    return spans


def sentence_spans(text: str) -> list[Span]:
    """Every sentence of `text` in order, each a trimmed span tagged with its paragraph.

    Lines inside a paragraph are sentence boundaries too (headings, list items), unless a line
    looks hard-wrapped: long and not ending in a terminator.
    """
    spans: list[Span] = []
    for paragraph, (p_start, p_end) in enumerate(paragraph_spans(text)):
        for start, end in _line_blocks(text, p_start, p_end):
            for s_start, s_end in _split_block(text, start, end):
                spans.append(Span(s_start, s_end, paragraph))
    return spans


def excerpt(text: str, spans: Sequence[Span]) -> str:
    """The sentences at `spans` of `text` as one quotation, in passage order and on one line:
    neighbours joined as the text joins them, " … " where sentences between them are left
    out, so sentences apart in the article never read as one passage."""
    runs: list[list[int]] = []
    for span in sorted(set(spans), key=lambda span: span.start):
        if runs and not text[runs[-1][1] : span.start].strip():
            runs[-1][1] = max(runs[-1][1], span.end)
        else:
            runs.append([span.start, span.end])
    return " … ".join(unwrap(text[start:end]) for start, end in runs)


def sentences_excerpt(text: str, sentences: Sequence[str]) -> str:
    """These sentences of `text` (as `sentence_spans` cuts it) quoted by `excerpt`; ones it
    does not write are left out (all of them: the sentences joined on one line)."""
    spans: dict[str, Span] = {}
    for span in sentence_spans(text):
        spans.setdefault(text[span.start : span.end], span)
    found = [spans[sentence] for sentence in sentences if sentence in spans]
    return excerpt(text, found) if found else unwrap(" ".join(sentences))


def last_clause_cut(text: str, start: int, end: int) -> int | None:
    """The position just after the last comma or similar mark in `text[start:end]`: where an
    over-long sentence is best cut. None when there is none."""
    last = deque(_CLAUSE_END.finditer(text, start, end), maxlen=1)
    return last[0].end() if last else None


def _line_blocks(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """Split a paragraph at newlines that are real line breaks rather than hard wraps."""
    blocks = []
    block_start = start
    line_start = start
    for match in re.finditer(r"\n", text[start:end]):
        newline = start + match.start()
        last_line = text[line_start:newline].strip()
        line_start = newline + 1
        # Only the last line decides: a block holds more than one line only when each of its
        # earlier lines was a hard wrap, so the last line is all a check needs to look at.
        hard_wrapped = len(last_line) >= _HARD_WRAP_MIN_CHARS and not _ends_sentence(last_line)
        if not hard_wrapped:
            blocks.append((block_start, newline))
            block_start = newline + 1
    blocks.append((block_start, end))
    return [trimmed for s, e in blocks if (trimmed := _trim(text, s, e))]


def _split_block(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """Cut one block of text after every sentence terminator."""
    cuts = {m.end() for m in _CJK_END.finditer(text, start, end)}
    cuts.update(
        m.end() for m in _LATIN_END.finditer(text, start, end) if not _is_abbreviation(text, m)
    )
    pieces = []
    position = start
    for cut in sorted(cuts):
        if cut >= end:
            break
        _append_piece(text, pieces, _trim(text, position, cut))
        position = cut
    _append_piece(text, pieces, _trim(text, position, end))
    return pieces


def _append_piece(text: str, pieces: list[tuple[int, int]], piece: tuple[int, int] | None) -> None:
    """Add a sentence piece, gluing an attribution onto the sentence before it."""
    if piece is None:
        return
    if pieces and _ATTRIBUTION.match(text[piece[0] : piece[1]]):
        pieces[-1] = (pieces[-1][0], piece[1])
    else:
        pieces.append(piece)


def _is_abbreviation(text: str, match: re.Match[str]) -> bool:
    word_start = match.start()
    while word_start > 0 and (text[word_start - 1].isalpha() or text[word_start - 1] == "."):
        word_start -= 1
    return text[word_start : match.start()].lower() in _ABBREVIATIONS


def _ends_sentence(line: str) -> bool:
    return bool(line) and (line[-1] in "。！？；!?….:：" or line[-1] in _CLOSERS)


def _trim(text: str, start: int, end: int) -> tuple[int, int] | None:
    """Narrow `[start, end)` to exclude surrounding whitespace; None when nothing is left."""
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return (start, end) if start < end else None
