"""Cutting article text into overlapping, sentence-aligned chunks that fit the embedding model."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

from index.sentences import Span, last_clause_cut, sentence_spans

TokenCounter = Callable[[str], int]
# Cutting an over-long sentence: a piece is accepted once it fills this share of the budget,
# and the interpolation aims a little under the budget so its first probe usually fits.
_FILL = 0.9
_AIM = 0.95
_MAX_PROBES = 8
# A sentence longer than this many characters per budget token is cut without being counted
# whole first (cutting finds out when it fits after all).
_MAX_CHARS_PER_TOKEN = 32


@dataclass(frozen=True)
class ChunkingConfig:
    """Token budget per chunk and how many tokens of trailing sentences the next chunk repeats."""

    max_tokens: int
    overlap_tokens: int


@dataclass(frozen=True)
class Chunk:
    """A contiguous slice `text == article_text[start:end]` of one article."""

    id: str
    article_id: str
    ordinal: int
    start: int
    end: int
    text: str
    token_count: int


def passage_with_title(title: str, text: str) -> str:
    """The text the embedder sees for a chunk: the article title gives a passage its topic."""
    return f"{title}\n{text}" if title else text


class Chunker:
    """Packs sentences into chunks within a token budget, keeping paragraphs together.

    The budget is the configured one, capped by what the model reads without truncating
    (`model_max_tokens`, counted by `count_tokens` with the model's own tokenizer), minus the
    title that is embedded with every chunk.
    """

    def __init__(
        self, count_tokens: TokenCounter, model_max_tokens: int, config: ChunkingConfig
    ) -> None:
        self._count = count_tokens
        self._model_max_tokens = model_max_tokens
        self._config = config

    def split(self, article_id: str, text: str, title: str = "") -> list[Chunk]:
        """Chunks of `text` in reading order; none exceeds the budget, none is empty."""
        title_tokens = (
            self._count(passage_with_title(title, "x")) - self._count("x") if title else 0
        )
        budget = min(self._config.max_tokens, self._model_max_tokens - title_tokens)
        budget = max(budget, 16)
        units = self._units(text, budget)
        spans = self._pack(text, units, budget)
        return self._chunks(article_id, text, spans)

    def _units(self, text: str, budget: int) -> list[tuple[Span, int]]:
        """Sentences with their token counts; a sentence over budget is cut into pieces."""
        units = []
        for span in sentence_spans(text):
            # A sentence far longer than a budget's worth of text is not counted whole.
            long = span.end - span.start > budget * _MAX_CHARS_PER_TOKEN
            tokens = budget + 1 if long else self._count(text[span.start : span.end])
            if tokens <= budget:
                units.append((span, tokens))
            else:
                units.extend(self._cut_long(text, span, budget))
        return units

    def _cut_long(self, text: str, span: Span, budget: int) -> list[tuple[Span, int]]:
        """Cut an over-long sentence into pieces that fit, each ending at the last clause mark
        that fits, else at the last whitespace, else after the last character that fits.

        Every piece costs a few tokenizer calls on about its own length, so cutting is linear in
        the sentence whatever its punctuation.
        """
        pieces = []
        start = span.start
        guess = budget
        while start < span.end:
            limit, limit_tokens = self._fitting_end(text, start, span.end, budget, guess)
            end = limit if limit == span.end else _last_cut(text, start, limit)
            tokens = limit_tokens if end == limit else self._count(text[start:end])
            if tokens > budget:  # token counts are not quite monotonic in the text's length
                end, tokens = limit, limit_tokens
            pieces.append((Span(start, end, span.paragraph), tokens))
            guess = limit - start
            start = _skip_space(text, end, span.end)
        return pieces

    def _fitting_end(
        self, text: str, start: int, end: int, budget: int, guess: int
    ) -> tuple[int, int]:
        """A position p in (start, end] whose slice `text[start:p]` fits the budget and fills at
        least `_FILL` of it (or reaches `end`), with its token count, found by interpolating on
        token counts from a guessed length: each probe scales the slice by budget over the
        tokens it counted, so a piece takes two or three probes of about its own length."""
        fitting, too_long = start + 1, end + 1  # one character always fits a budget of 16
        fitting_tokens = self._count(text[start:fitting]) if guess < 1 else 0
        probe = min(end, start + max(guess, 1))
        for _ in range(_MAX_PROBES):
            tokens = self._count(text[start:probe])
            if tokens <= budget:
                fitting, fitting_tokens = probe, tokens
                if probe == end or tokens >= budget * _FILL:
                    break
            else:
                too_long = probe
            scaled = start + int((probe - start) * budget * _AIM / max(tokens, 1))
            probe = min(max(scaled, fitting + 1), too_long - 1, end)
            if probe <= fitting:
                break
        if fitting_tokens == 0:  # no probe fitted: the single character it started from
            fitting_tokens = self._count(text[start:fitting])
        return fitting, fitting_tokens

    def _fits(self, text: str, start: int, end: int, budget: int) -> bool:
        return self._count(text[start:end]) <= budget

    def _pack(self, text: str, units: list[tuple[Span, int]], budget: int) -> list[tuple[int, int]]:
        """Group consecutive units into chunk spans; overlap only where a paragraph is split."""
        spans: list[tuple[int, int]] = []
        first = 0
        while first < len(units):
            last = self._last_fitting_unit(text, units, first, budget)
            last = self._prefer_paragraph_end(units, first, last, budget)
            spans.append((units[first][0].start, units[last][0].end))
            if last + 1 >= len(units):
                break
            first = self._next_start(units, first, last)
        return spans

    def _last_fitting_unit(
        self, text: str, units: list[tuple[Span, int]], first: int, budget: int
    ) -> int:
        """Index of the last unit that still fits, checked with the real tokenizer at the end.

        The units' counts add up to about the joined text's count; when the joined text is
        longer (the gaps between sentences cost tokens too), the end is found from an estimate
        of what the gaps cost, with a bisection only when the estimate misses.
        """
        last, total = first, units[first][1]
        while last + 1 < len(units) and total + units[last + 1][1] <= budget:
            last += 1
            total += units[last][1]
        if last == first:
            return last
        joined = self._count(text[units[first][0].start : units[last][0].end])
        if joined <= budget:
            return last
        # Spread the gaps' extra tokens evenly to guess the end, confirm the guess and the unit
        # after it, and bisect only when the guess was wrong.
        per_gap = (joined - total) / (last - first)
        guess, running = first, units[first][1]
        while (
            guess + 1 < last
            and running + units[guess + 1][1] + (guess + 1 - first) * per_gap <= budget
        ):
            guess += 1
            running += units[guess][1]
        fitting, too_long = first, last
        for probe in (guess, guess + 1):
            if not fitting < probe < too_long:
                continue
            if self._fits(text, units[first][0].start, units[probe][0].end, budget):
                fitting = probe
            else:
                too_long = probe
                break
        while too_long - fitting > 1:
            middle = (fitting + too_long) // 2
            if self._fits(text, units[first][0].start, units[middle][0].end, budget):
                fitting = middle
            else:
                too_long = middle
        return fitting

    def _prefer_paragraph_end(
        self, units: list[tuple[Span, int]], first: int, last: int, budget: int
    ) -> int:
        """Move the cut back to a paragraph start when that keeps the next paragraph whole."""
        if last + 1 >= len(units) or units[last + 1][0].paragraph != units[last][0].paragraph:
            return last
        paragraph = units[last][0].paragraph
        paragraph_first = last
        while paragraph_first > first and units[paragraph_first - 1][0].paragraph == paragraph:
            paragraph_first -= 1
        if paragraph_first == first:
            return last
        paragraph_tokens = 0
        for span, tokens in units[paragraph_first:]:
            if span.paragraph != paragraph or paragraph_tokens > budget:
                break
            paragraph_tokens += tokens
        return paragraph_first - 1 if paragraph_tokens <= budget else last

    def _next_start(self, units: list[tuple[Span, int]], first: int, last: int) -> int:
        """Where the next chunk begins: after `last`, backed up by overlap inside a paragraph."""
        following = last + 1
        if units[following][0].paragraph != units[last][0].paragraph:
            return following
        start, overlap = following, 0
        while start - 1 > first and units[start - 1][0].paragraph == units[last][0].paragraph:
            overlap += units[start - 1][1]
            if overlap > self._config.overlap_tokens:
                break
            start -= 1
        return start

    def _chunks(self, article_id: str, text: str, spans: list[tuple[int, int]]) -> list[Chunk]:
        chunks = []
        seen: dict[str, int] = {}
        for ordinal, (start, end) in enumerate(spans):
            body = text[start:end]
            occurrence = seen.get(body, 0)
            seen[body] = occurrence + 1
            digest = hashlib.sha256(f"{article_id}\0{occurrence}\0{body}".encode()).hexdigest()
            chunks.append(
                Chunk(
                    id=digest[:32],
                    article_id=article_id,
                    ordinal=ordinal,
                    start=start,
                    end=end,
                    text=body,
                    token_count=self._count(body),
                )
            )
        return chunks


def _last_cut(text: str, start: int, limit: int) -> int:
    """Where to end a piece of an over-long sentence within `(start, limit]`: after its last
    clause mark, else before its last whitespace, else at `limit`."""
    clause = last_clause_cut(text, start, limit)
    if clause is not None:
        return clause
    for position in range(min(limit, len(text) - 1), start, -1):
        if text[position].isspace():
            while text[position - 1].isspace():
                position -= 1
            return position
    return limit


def _skip_space(text: str, position: int, end: int) -> int:
    """The first non-whitespace position at or after `position`, at most `end`."""
    while position < end and text[position].isspace():
        position += 1
    return position
