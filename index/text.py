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
