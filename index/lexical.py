"""BM25 over chunks with a tokenizer for Chinese and Latin script, beside the dense vectors.

Text is folded first (`index.text.fold`: width, case, Traditional to Simplified); Chinese is then
cut into character bigrams, which need no dictionary and match names and terms exactly, and
Latin-script text into words.
"""

from __future__ import annotations

import json
import re
import uuid
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from index.aliases import AliasTable, NameMentions, build_aliases
from index.sentences import sentence_spans
from index.text import HAN_RUN, fold, writes_chinese

_WORD = re.compile(r"[^\W_]+", re.UNICODE)
# English function words carry no evidence; in a mixed-language corpus they would make every
# English article a lexical match for every English question. This is bm25s's (0.3)
# STOPWORDS_EN_PLUS, NLTK's English list, kept here because it is part of the tokenizer (a
# change is a `_CACHE_VERSION` bump).
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
# 6: term counts per chunk, updated in place; weights computed at search time.
_CACHE_VERSION = "7"
_POSTINGS_FILE = "postings.npz"
# New chunks' postings are sorted into place this many chunks at a time.
_BLOCK_CHUNKS = 4096
# BM25's parameters (Lucene's, and bm25s's defaults, which the tests check scores against).
_K1 = 1.5
_B = 0.75


@dataclass(frozen=True)
class LexicalSource:
    """What the lexical index reads of one chunk: its title and text, the names tagged in them
    when it was stored, and its article version's content hash (a chunk id names its text, not
    its title, so this says whether a cached chunk still reads the same)."""

    chunk_id: str
    text: str
    mentions: NameMentions
    version: str = ""


@dataclass(frozen=True)
class _Postings:
    """How often each token occurs in each chunk holding it, by token (compressed sparse
    columns): token t is in chunks `indices[indptr[t]:indptr[t + 1]]`, `counts[...]` times
    each, chunks in ascending index order. `lengths` are the chunks' token counts."""

    counts: np.ndarray
    indices: np.ndarray
    indptr: np.ndarray
    lengths: np.ndarray

    @classmethod
    def none(cls) -> _Postings:
        return cls(
            np.zeros(0, np.uint16),
            np.zeros(0, np.int32),
            np.zeros(1, np.int64),
            np.zeros(0, np.int32),
        )

    def updated(
        self, keep: np.ndarray, added: Sequence[tuple[np.ndarray, np.ndarray]], tokens: int
    ) -> tuple[_Postings, np.ndarray]:
        """These postings without the chunks `keep` is False for and with `added` (distinct
        token ids and their counts) as new chunks after the kept ones, over `tokens` token ids;
        tokens no chunk holds any more are dropped. Returns the postings and each old token
        id's new id (-1 when dropped).

        The result's arrays are allocated once and filled in place: kept entries by their rank
        in their token's run, new ones a block of chunks at a time (a small stable sort each).
        Linear in the postings, so a small change to a large corpus costs a pass over its
        arrays, and a corpus built from scratch holds little beyond its final postings (100k
        chunks, 40M entries: 0.6 GB at most, against 2.7 GB with one sort of everything)."""
        entry_token = np.repeat(
            np.arange(len(self.indptr) - 1, dtype=np.int32), np.diff(self.indptr)
        )
        kept = keep[self.indices] if len(self.indices) else np.zeros(0, bool)
        old_tokens = entry_token[kept]
        del entry_token
        old_frequency = np.bincount(old_tokens, minlength=tokens)
        new_frequency = np.zeros(tokens, dtype=np.int64)
        for ids, _ in added:
            new_frequency[ids] += 1
        frequency = old_frequency + new_frequency
        starts = np.concatenate([[0], np.cumsum(frequency)[:-1]]).astype(np.int64)
        total = int(frequency.sum())
        indices = np.empty(total, dtype=np.int32)
        counts = np.empty(total, dtype=np.uint16)
        # Kept entries, already in token order: each to its token's start plus its rank.
        old_starts = np.concatenate([[0], np.cumsum(old_frequency)[:-1]]).astype(np.int64)
        rank = np.arange(len(old_tokens), dtype=np.int64) - old_starts[old_tokens]
        at = starts[old_tokens] + rank
        renumbered = (np.cumsum(keep, dtype=np.int64) - 1).astype(np.int32)
        indices[at] = renumbered[self.indices[kept]]
        counts[at] = self.counts[kept]
        del rank, at, old_tokens
        # New entries after them, chunk by chunk in order, so each token's chunks ascend.
        cursor = starts + old_frequency
        first = int(keep.sum())
        for block in range(0, len(added), _BLOCK_CHUNKS):
            part = added[block : block + _BLOCK_CHUNKS]
            block_tokens = np.concatenate([ids for ids, _ in part]).astype(np.int64)
            block_counts = np.concatenate([repeats for _, repeats in part])
            block_chunks = np.repeat(
                np.arange(first + block, first + block + len(part), dtype=np.int32),
                [len(ids) for ids, _ in part],
            )
            order = np.argsort(block_tokens, kind="stable")
            sorted_tokens = block_tokens[order]
            distinct, run_starts, run_lengths = np.unique(
                sorted_tokens, return_index=True, return_counts=True
            )
            ranks = np.arange(len(order), dtype=np.int64) - np.repeat(run_starts, run_lengths)
            at = cursor[sorted_tokens] + ranks
            indices[at] = block_chunks[order]
            counts[at] = block_counts[order]
            cursor[distinct] += run_lengths
        present = frequency > 0
        new_ids = np.where(present, np.cumsum(present) - 1, -1)
        indptr = np.concatenate([[0], np.cumsum(frequency[present])]).astype(np.int64)
        lengths = np.concatenate(
            [self.lengths[keep], [int(repeats.sum()) for _, repeats in added]]
        ).astype(np.int32)
        return _Postings(counts, indices, indptr, lengths), new_ids


class LexicalIndex:
    """A BM25 index of chunk texts, with what else is read off the same texts (the alias
    table; whether most of them write Chinese), saved to and loaded from a folder.

    It keeps term counts, not weights: BM25's weights depend on the number of chunks and
    their mean length, so every change would alter all of them, while counts change only for
    the chunks that did. `updated` applies a reindex's changes in one pass over the arrays
    and tokenizes only the new chunks; a search weighs the few postings its tokens touch."""

    def __init__(
        self,
        sources: Sequence[LexicalSource],
        postings: _Postings,
        vocabulary: dict[str, int],
        chinese: np.ndarray,
        aliases: AliasTable | None = None,
    ) -> None:
        self._chunk_ids = [source.chunk_id for source in sources]
        self._versions = [source.version for source in sources]
        self._mentions = [source.mentions for source in sources]
        self._postings = postings
        self._vocabulary = vocabulary
        self._chinese = chinese
        # Built from the mentions, or as saved: a load then needs no pinyin (0.3 s to import).
        self.aliases: AliasTable = build_aliases(self._mentions) if aliases is None else aliases
        self.writes_chinese = bool(chinese.sum() * 2 > len(chinese))
        # Each chunk's rank in chunk-id order: equal scores rank by it, so a ranking does not
        # depend on the order chunks were added in.
        self._rank = np.argsort(np.argsort(np.array(self._chunk_ids, dtype=object)))
        count = len(self._chunk_ids)
        lengths = postings.lengths.astype(np.float64)
        mean = float(lengths.mean()) if count else 1.0
        self._norms = (_K1 * ((1 - _B) + _B * lengths / (mean or 1.0))).astype(np.float32)
        frequency = np.diff(postings.indptr).astype(np.float64)
        self._idf = np.log(1 + (count - frequency + 0.5) / (frequency + 0.5)).astype(np.float32)

    @property
    def chunk_ids(self) -> list[str]:
        """The chunks this index holds (the live ones when it was built)."""
        return self._chunk_ids

    @classmethod
    def build(cls, sources: Sequence[LexicalSource]) -> LexicalIndex:
        """The index of these chunks."""
        empty = cls([], _Postings.none(), {}, np.zeros(0, bool))
        return empty.updated({source.chunk_id: source.version for source in sources}, sources)

    def missing(self, live: dict[str, str]) -> list[str]:
        """Of these chunks (id -> article version), those this index does not hold at that
        version: the ones `updated` needs the sources of."""
        held = dict(zip(self._chunk_ids, self._versions, strict=True))
        return [chunk_id for chunk_id, version in live.items() if held.get(chunk_id) != version]

    def updated(self, live: dict[str, str], added: Iterable[LexicalSource]) -> LexicalIndex:
        """The index of the chunks `live` names (id -> article version): those this index holds
        at that version are kept as they are, the others (`missing(live)`) tokenized from
        `added`, read one at a time and not kept (a corpus's texts need not fit in memory); a
        missing chunk `added` lacks (a damaged store) is left out; the rest dropped."""
        keep = np.array(
            [live.get(chunk_id) == version for chunk_id, version in self._held()], dtype=bool
        )
        wanted = set(self.missing(live))
        vocabulary = dict(self._vocabulary)
        counts, fresh, chinese = [], [], []
        for source in added:
            if source.chunk_id not in wanted:
                raise ValueError(
                    f"{source.chunk_id} is not a chunk this index lacks, or came twice"
                )
            wanted.discard(source.chunk_id)
            ids = [
                vocabulary.setdefault(token, len(vocabulary))
                for token in lexical_tokens(source.text)
            ]
            # As small arrays: a corpus's postings as dicts would take gigabytes.
            tokens, repeats = np.unique(np.array(ids, dtype=np.int32), return_counts=True)
            counts.append((tokens, np.minimum(repeats, 65535).astype(np.uint16)))
            chinese.append(writes_chinese(source.text))
            fresh.append(LexicalSource(source.chunk_id, "", source.mentions, source.version))
        if not fresh and keep.all():
            return self
        postings, new_ids = self._postings.updated(keep, counts, len(vocabulary))
        vocabulary = {
            token: int(new_ids[token_id])
            for token, token_id in vocabulary.items()
            if new_ids[token_id] >= 0
        }
        kept = [
            LexicalSource(chunk_id, "", mentions, version)
            for (chunk_id, version), mentions, held in zip(
                self._held(), self._mentions, keep, strict=True
            )
            if held
        ]
        flags = np.concatenate([self._chinese[keep], np.array(chinese, dtype=bool)]).astype(bool)
        return LexicalIndex([*kept, *fresh], postings, vocabulary, flags)

    def _held(self) -> Iterator[tuple[str, str]]:
        return zip(self._chunk_ids, self._versions, strict=True)

    def save(self, folder: Path) -> None:
        """Two files, tied by a token both hold: a save killed between them (or over an older
        save in the same folder) leaves a pair that does not load, never a mismatched one."""
        folder.mkdir(parents=True, exist_ok=True)
        postings = self._postings
        token = uuid.uuid4().hex
        np.savez(
            folder / _POSTINGS_FILE,
            counts=postings.counts,
            indices=postings.indices,
            indptr=postings.indptr,
            lengths=postings.lengths,
            chinese=self._chinese,
            token=np.array(token),
        )
        meta = {
            "format": _CACHE_VERSION,
            "token": token,
            "chunk_ids": self._chunk_ids,
            "versions": self._versions,
            "mentions": [mentions.to_text() for mentions in self._mentions],
            "aliases": self.aliases.to_json(),
            "vocabulary": self._vocabulary,
        }
        (folder / "citebot.json").write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, folder: Path) -> LexicalIndex | None:
        """The saved index, or None when there is none, it cannot be read or it was saved in
        another format."""
        try:
            meta = json.loads((folder / "citebot.json").read_text(encoding="utf-8"))
            if meta.get("format") != _CACHE_VERSION:
                return None
            with np.load(folder / _POSTINGS_FILE) as saved:
                postings = _Postings(
                    saved["counts"], saved["indices"], saved["indptr"], saved["lengths"]
                )
                chinese = saved["chinese"]
                if str(saved["token"]) != meta["token"]:
                    return None
            sources = [
                LexicalSource(chunk_id, "", NameMentions.from_text(mentions), version)
                for chunk_id, version, mentions in zip(
                    meta["chunk_ids"], meta["versions"], meta["mentions"], strict=True
                )
            ]
            if not len(postings.lengths) == len(chinese) == len(sources):
                return None
            aliases = AliasTable.from_json(meta["aliases"])
            return cls(sources, postings, meta["vocabulary"], chinese, aliases)
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

    def coverage(self, query: str) -> float:
        """Share of the query's tokens that occur in the corpus: how much BM25 can say about it.

        An English question over Chinese articles shares only names with them, if anything.
        """
        tokens = lexical_tokens(query)
        return sum(token in self._vocabulary for token in tokens) / len(tokens) if tokens else 0.0

    def search(self, query: str, k: int) -> list[tuple[str, float]]:
        """The `k` best chunk ids for the query with their BM25 scores; none without overlap.
        A token asked twice counts twice, as in bm25s's search."""
        ids = [
            self._vocabulary[token] for token in lexical_tokens(query) if token in self._vocabulary
        ]
        if not ids or not self._chunk_ids:
            return []
        postings = self._postings
        scores = np.zeros(len(self._chunk_ids), dtype=np.float32)
        for token_id in ids:
            start, end = postings.indptr[token_id], postings.indptr[token_id + 1]
            chunks = postings.indices[start:end]
            counts = postings.counts[start:end].astype(np.float32)
            scores[chunks] += self._idf[token_id] * (counts / (self._norms[chunks] + counts))
        hits = np.flatnonzero(scores > 0)
        if len(hits) > k:  # the k best, and every chunk tied with the k-th
            kth = np.partition(scores[hits], len(hits) - k)[len(hits) - k]
            hits = hits[scores[hits] >= kth]
        best = hits[np.lexsort((self._rank[hits], -scores[hits]))][:k]
        return [(self._chunk_ids[i], float(scores[i])) for i in best]
