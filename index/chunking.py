"""Cutting article text into overlapping, sentence-aligned chunks that fit the embedding model."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

from index.sentences import Span, clause_cut_points, sentence_spans

TokenCounter = Callable[[str], int]


@dataclass(frozen=True)
class ChunkingConfig:
    """Token budget per chunk and how many tokens of trailing sentences the next chunk repeats."""

    max_tokens: int = 256
    overlap_tokens: int = 48


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
            tokens = self._count(text[span.start : span.end])
            if tokens <= budget:
                units.append((span, tokens))
            else:
                units.extend(self._cut_long(text, span, budget))
        return units

    def _cut_long(self, text: str, span: Span, budget: int) -> list[tuple[Span, int]]:
        """Cut an over-long sentence at clause marks, or at the longest prefix that fits."""
        pieces = []
        start = span.start
        cut_points = [*clause_cut_points(text, span.start, span.end), span.end]
        while start < span.end:
            fitting = [c for c in cut_points if c > start and self._fits(text, start, c, budget)]
            end = (
                fitting[-1]
                if fitting
                else self._longest_fitting_prefix(text, start, span.end, budget)
            )
            pieces.append((Span(start, end, span.paragraph), self._count(text[start:end])))
            start = end
        return pieces

    def _longest_fitting_prefix(self, text: str, start: int, end: int, budget: int) -> int:
        """Binary search for the furthest end position whose slice fits the budget (≥1 char)."""
        low, high = start + 1, end
        while low < high:
            middle = (low + high + 1) // 2
            if self._fits(text, start, middle, budget):
                low = middle
            else:
                high = middle - 1
        return low

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
        """Index of the last unit that still fits, checked with the real tokenizer at the end."""
        last, total = first, units[first][1]
        while last + 1 < len(units) and total + units[last + 1][1] <= budget:
            last += 1
            total += units[last][1]
        while last > first and not self._fits(
            text, units[first][0].start, units[last][0].end, budget
        ):
            last -= 1
        return last

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
        paragraph_tokens = sum(t for s, t in units[paragraph_first:] if s.paragraph == paragraph)
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
