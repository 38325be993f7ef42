"""What kind of text this is, and text compared loosely: the one home of both rules.

Script: a text "writes Chinese" when a third or more of its letters are Han characters (a
Chinese sentence often carries English names; an English one may quote a Chinese name), and
articles write Chinese when most of their chunks do.
Folding: width (NFKC), case, and Traditional to Simplified (OpenCC), so 團隊, 团队 and
full-width Ｑｗｅｎ match their other forms. BM25, abstention, the prompts and the citation check
all use these.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Iterable
from functools import cache
from types import ModuleType

import opencc

# The Han (CJK ideograph) blocks: Extension A, the unified block, compatibility ideographs.
HAN = r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
HAN_CHAR = re.compile(f"[{HAN}]")
HAN_RUN = re.compile(f"[{HAN}]+")


# Characters written without spaces between them: Han, kana and CJK or full-width punctuation.
_UNSPACED = re.compile(f"[\u3000-\u30ff\uff00-\uffef{HAN}]")
_LINE_BREAK = re.compile(r"[^\S\n]*\n\s*")


def unwrap(text: str) -> str:
    """Text broken over lines (a hard-wrapped file, or sentences of two paragraphs) as one
    line: each line break, with the spaces around it, becomes a space, or nothing between two
    Chinese characters, which are written without spaces."""

    def join(match: re.Match[str]) -> str:
        before, after = text[match.start() - 1 : match.start()], text[match.end() : match.end() + 1]
        return "" if _UNSPACED.match(before) and _UNSPACED.match(after) else " "

    return _LINE_BREAK.sub(join, text)


@cache
def _to_simplified() -> opencc.OpenCC:
    return opencc.OpenCC("t2s")


def fold(text: str) -> str:
    """Text compared loosely: width (NFKC), case, Traditional to Simplified."""
    return _to_simplified().convert(unicodedata.normalize("NFKC", text).casefold())


def writes_chinese(text: str) -> bool:
    """Whether a text is mostly Chinese (a third or more of its letters are Han characters)."""
    letters = sum(char.isalpha() for char in text)
    return letters > 0 and len(HAN_CHAR.findall(text)) / letters >= 1 / 3


def mostly_chinese(texts: Iterable[str]) -> bool:
    """Whether most of these texts (a corpus's chunks) write Chinese: the articles' language."""
    verdicts = [writes_chinese(text) for text in texts]
    return sum(verdicts) * 2 > len(verdicts)


@cache
def jieba_tagger() -> ModuleType:
    """jieba's part-of-speech tagger (its dictionary is Simplified: give it folded text),
    loaded on first use (about a second), quietly."""
    import jieba
    import jieba.posseg

    jieba.setLogLevel(logging.WARNING)
    return jieba.posseg
