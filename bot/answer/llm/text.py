"""The languages the prompts and the citation check tell apart, by `index.text`'s script rule."""

from __future__ import annotations

from typing import Literal

from index.text import writes_chinese

Language = Literal["zh", "en"]
LANGUAGE_NAMES: dict[Language, str] = {"zh": "Chinese", "en": "English"}


def language_of(text: str) -> Language:
    """Chinese or English, the languages Citebot serves."""
    return "zh" if writes_chinese(text) else "en"
