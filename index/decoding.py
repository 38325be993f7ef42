"""Turning an article file's bytes into text, whatever encoding the team saved it in.

Order of trust: a byte-order mark, then strict UTF-8, then Big5 (CP950) or GB18030 when one of
them reads as everyday Chinese, then charset-normalizer for any other legacy encoding.
Chinese is checked before charset-normalizer because, on short or mixed English/Chinese text,
charset-normalizer confidently picks a wrong code page (cp949, cp1258, even UTF-16) or none.
"""

from __future__ import annotations

import codecs
from functools import cache
from operator import itemgetter

from charset_normalizer import from_bytes

# Longest BOMs first: the UTF-32 LE mark starts with the UTF-16 LE one.
_BYTE_ORDER_MARKS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
# CP950 rather than Python's "big5": it is what Taiwanese Windows writes and adds € and more.
# The two read 11 punctuation codes differently (A145 is "‧" in CP950, "•" in big5).
# Listed first so it wins a tie, the team's articles being Traditional Chinese.
_CHINESE_CODECS = ("cp950", "gb18030")
# Share of non-ASCII characters that must be everyday Chinese for a Chinese reading to be taken.
# Correct readings score close to 1; Big5 or Shift-JIS read as GB18030 scores about 0.2-0.35.
# EUC-KR Korean reads as common GB2312 hanzi and passes: Korean legacy files are out of scope.
_MIN_EVERYDAY_SHARE = 0.8
# Unicode blocks of the punctuation Chinese text uses: general, CJK, full-width forms.
_CJK_PUNCTUATION_RANGES = ((0x2000, 0x206F), (0x3000, 0x303F), (0xFF00, 0xFFEF))


class UndecodableError(ValueError):
    """The bytes are not text in any encoding recognised with confidence; the message says why."""


def decode_bytes(data: bytes) -> str:
    """Decode a file's bytes to text with "\\n" newlines and no BOM.

    Raises UndecodableError for binary data rather than returning mojibake.
    """
    return _normalise_newlines(_decode(data))


def _decode(data: bytes) -> str:
    """Pick the encoding by the module's order of trust and decode with it."""
    marked = _decode_after_bom(data)
    if marked is not None:
        return marked
    if b"\x00" in data:
        raise UndecodableError("looks like binary data (contains NUL bytes)")
    utf8 = _strict_decode(data, "utf-8")
    if utf8 is not None:
        return utf8
    chinese = _decode_as_chinese(data)
    if chinese is not None:
        return chinese
    return _decode_with_charset_normalizer(data)


def _decode_after_bom(data: bytes) -> str | None:
    """Decode with the encoding a leading byte-order mark announces, or None without a BOM."""
    for mark, encoding in _BYTE_ORDER_MARKS:
        if data.startswith(mark):
            text = _strict_decode(data[len(mark) :], encoding)
            if text is None:
                raise UndecodableError(f"invalid {encoding} data after its byte-order mark")
            return text
    return None


def _strict_decode(data: bytes, encoding: str) -> str | None:
    """The text if every byte is valid in the encoding, else None."""
    try:
        return data.decode(encoding)
    except UnicodeDecodeError:
        return None


def _decode_as_chinese(data: bytes) -> str | None:
    """The Big5/GB18030 reading that looks most like everyday Chinese, if any looks like it."""
    readings = [
        (text, _everyday_chinese_share(text))
        for encoding in _CHINESE_CODECS
        if (text := _strict_decode(data, encoding)) is not None
    ]
    plausible = [reading for reading in readings if reading[1] >= _MIN_EVERYDAY_SHARE]
    return max(plausible, key=itemgetter(1))[0] if plausible else None


def _everyday_chinese_share(text: str) -> float:
    """Share of non-ASCII characters that are common hanzi or CJK punctuation; 0 without hanzi."""
    non_ascii = [char for char in text if not char.isascii()]
    common = _common_hanzi()
    if not any(char in common for char in non_ascii):
        return 0.0
    everyday = sum(char in common or _is_cjk_punctuation(char) for char in non_ascii)
    return everyday / len(non_ascii)


def _is_cjk_punctuation(char: str) -> bool:
    """Whether the character sits in a punctuation block Chinese text uses."""
    return any(first <= ord(char) <= last for first, last in _CJK_PUNCTUATION_RANGES)


@cache
def _common_hanzi() -> frozenset[str]:
    """Hanzi in everyday use: Big5's frequent set plus both GB2312 levels, read off the codecs."""
    return frozenset(
        _two_byte_characters("cp950", 0xA440, 0xC67E)
        | _two_byte_characters("gb2312", 0xB0A1, 0xF7FE)
    )


def _two_byte_characters(encoding: str, first_code: int, last_code: int) -> set[str]:
    """The characters the encoding assigns to two-byte codes between first and last code."""
    characters = set()
    for code in range(first_code, last_code + 1):
        text = _strict_decode(code.to_bytes(2, "big"), encoding)
        if text is not None and len(text) == 1:
            characters.add(text)
    return characters


def _decode_with_charset_normalizer(data: bytes) -> str:
    """Decode with charset-normalizer's best guess, refusing when it finds nothing plausible."""
    best = from_bytes(data).best()
    if best is None:
        raise UndecodableError("looks like binary data (no plausible text encoding found)")
    return str(best)


def _normalise_newlines(text: str) -> str:
    """Turn Windows and old Mac line endings into "\\n"."""
    return text.replace("\r\n", "\n").replace("\r", "\n")
