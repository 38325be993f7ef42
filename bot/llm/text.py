"""Text helpers shared by the prompts and the citation check: folding and language."""

from __future__ import annotations

import re
import unicodedata
from functools import cache
from typing import Literal

import opencc

Language = Literal["zh", "en"]
LANGUAGE_NAMES: dict[Language, str] = {"zh": "Chinese", "en": "English"}

HAN = r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_HAN_CHAR = re.compile(f"[{HAN}]")
_LATIN_LETTER = re.compile(r"[A-Za-z]")


@cache
def _to_simplified() -> opencc.OpenCC:
    return opencc.OpenCC("t2s")


def fold(text: str) -> str:
    """Text compared loosely, as BM25 does: width (NFKC), case, Traditional to Simplified."""
    return _to_simplified().convert(unicodedata.normalize("NFKC", text).casefold())


def language_of(text: str) -> Language:
    """Chinese or English, the languages Citebot serves: Chinese when Han characters make up a
    fair share of the text (a Chinese sentence often carries English names)."""
    han = len(_HAN_CHAR.findall(text))
    latin = len(_LATIN_LETTER.findall(text))
    return "zh" if han and han * 3 >= latin else "en"
