"""Turning an article file's bytes into text, whatever encoding the team saved it in.

Order of trust: a byte-order mark; UTF-16 without one when NUL bytes show it; strict UTF-8;
the Big5 (CP950), GB18030 or BOM-less UTF-16 reading that reads most like everyday Chinese;
UTF-8 with a few undecodable bytes; Western (CP1252, a superset of Latin-1's letters) text that
reads like English or another Western language; Big5 or GB18030 with a few undecodable bytes;
then charset-normalizer for any other legacy encoding. Chinese is checked before
charset-normalizer because, on short or mixed English/Chinese text, charset-normalizer
confidently picks a wrong code page (cp949, cp1258, even UTF-16) or none. Undecodable bytes
become U+FFFD and are counted, so the caller can say so.
"""

from __future__ import annotations

import codecs
import re
import unicodedata
from dataclasses import dataclass
from functools import cache

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
_UTF16_CODECS = ("utf-16-le", "utf-16-be")
# Share of non-ASCII characters that must be everyday Chinese for a Chinese reading to be taken.
# Correct readings score close to 1; Big5 or Shift-JIS read as GB18030 scores about 0.2-0.35.
# EUC-KR Korean reads as common GB2312 hanzi and passes: Korean legacy files are out of scope.
_MIN_EVERYDAY_SHARE = 0.8
# Unicode blocks of the punctuation Chinese text uses: general, CJK, full-width forms.
_CJK_PUNCTUATION_RANGES = ((0x2000, 0x206F), (0x3000, 0x303F), (0xFF00, 0xFFEF))
# Latin-1 Supplement and Latin Extended-A/B: accented letters and Western symbols.
_LATIN_LAST = 0x24F
# Control characters real text holds: tab, newlines, form feed.
_TEXT_CONTROLS = frozenset("\t\n\v\f\r")
# A damaged UTF-8 file: at least this many valid multi-byte characters per undecodable byte
# (text in another encoding has hardly any valid UTF-8 sequences; damage is rare in real UTF-8).
_UTF8_CHARACTERS_PER_BAD_BYTE = 2
# A damaged Big5/GB18030 file: at most one undecodable byte per this many Chinese characters.
_CHINESE_CHARACTERS_PER_BAD_BYTE = 20
# Western text: at most this share of its non-space characters outside ASCII, and this share of
# its words with a non-ASCII letter must also hold an ASCII one (or be a single letter, as
# French "à"): Cyrillic, Greek or CJK bytes read as CP1252 give words of accented letters only.
_MAX_WESTERN_NON_ASCII_SHARE = 0.2
_MIN_WESTERN_WORD_SHARE = 0.8
_LETTER_RUN = re.compile(r"[^\W\d_]+")
# Undecodable bytes are first decoded as lone surrogates U+DC00 + byte (no codec here produces
# those from valid input), counted, then turned into U+FFFD.
_MARK_ERRORS = "citebot-mark-undecodable"
_MARKS = re.compile("[\udc00-\udcff]")


def _mark_undecodable(error: UnicodeError) -> tuple[str, int]:
    if not isinstance(error, UnicodeDecodeError):
        raise error
    bad = error.object[error.start : error.end]
    return "".join(chr(0xDC00 + byte) for byte in bad), error.end


codecs.register_error(_MARK_ERRORS, _mark_undecodable)


class UndecodableError(ValueError):
    """The bytes are not text in any encoding recognised with confidence; the message says why."""


@dataclass(frozen=True)
class DecodedText:
    """A file's text, the encoding it was read in, and how many bytes could not be decoded."""

    text: str
    encoding: str
    replaced_bytes: int = 0

    @property
    def note(self) -> str | None:
        """What a user should know about the decoding, or None when it was clean."""
        if not self.replaced_bytes:
            return None
        plural = "s" if self.replaced_bytes > 1 else ""
        return f"{self.replaced_bytes} undecodable byte{plural} replaced (read as {self.encoding})"


def decode_bytes(data: bytes) -> DecodedText:
    """Decode a file's bytes to text with "\\n" newlines and no BOM.

    Raises UndecodableError for binary data rather than returning mojibake.
    """
    decoded = _decode(data)
    return DecodedText(_normalise_newlines(decoded.text), decoded.encoding, decoded.replaced_bytes)


def _decode(data: bytes) -> DecodedText:
    """Pick the encoding by the module's order of trust and decode with it."""
    marked = _decode_after_bom(data)
    if marked is not None:
        return marked
    if b"\x00" in data:
        utf16 = _most_chinese(data, _UTF16_CODECS, western=True)
        if utf16 is None:
            raise UndecodableError("looks like binary data (contains NUL bytes)")
        return utf16
    utf8 = _strict_decode(data, "utf-8")
    if utf8 is not None:
        return DecodedText(utf8, "utf-8")
    for decode in (
        lambda: _most_chinese(data, _CHINESE_CODECS + _UTF16_CODECS),
        lambda: _damaged_utf8(data),
        lambda: _western(data),
        lambda: _damaged_chinese(data),
    ):
        decoded = decode()
        if decoded is not None:
            return decoded
    return _decode_with_charset_normalizer(data)


def _decode_after_bom(data: bytes) -> DecodedText | None:
    """Decode with the encoding a leading byte-order mark announces, or None without a BOM."""
    for mark, encoding in _BYTE_ORDER_MARKS:
        if data.startswith(mark):
            text = _strict_decode(data[len(mark) :], encoding)
            if text is None:
                raise UndecodableError(f"invalid {encoding} data after its byte-order mark")
            return DecodedText(text, encoding)
    return None


def _strict_decode(data: bytes, encoding: str) -> str | None:
    """The text if every byte is valid in the encoding, else None."""
    try:
        return data.decode(encoding)
    except UnicodeDecodeError:
        return None


def _most_chinese(
    data: bytes, encodings: tuple[str, ...], *, western: bool = False
) -> DecodedText | None:
    """The strict reading among `encodings` that looks most like everyday Chinese, if any does.

    With `western` (UTF-16 found by its NUL bytes, so mostly ASCII), English and other Western
    text counts too.
    UTF-16 readings need an even number of bytes; a reading with control characters is not text.
    """
    best: tuple[float, DecodedText] | None = None
    for encoding in encodings:
        if encoding.startswith("utf-16") and len(data) % 2:
            continue
        text = _strict_decode(data, encoding)
        if text is None or _has_controls(text):
            continue
        share = _everyday_chinese_share(text, western=western)
        if share >= _MIN_EVERYDAY_SHARE and (best is None or share > best[0]):
            best = (share, DecodedText(text, encoding))
    return best[1] if best else None


def _damaged_utf8(data: bytes) -> DecodedText | None:
    """UTF-8 with a few undecodable bytes, replaced; None unless valid UTF-8 clearly dominates."""
    text, bad = _decode_marking(data, "utf-8")
    multibyte = sum(not char.isascii() for char in text) - bad
    if _has_controls(text) or multibyte < bad * _UTF8_CHARACTERS_PER_BAD_BYTE:
        return None
    return DecodedText(_MARKS.sub("\ufffd", text), "utf-8", bad)


def _damaged_chinese(data: bytes) -> DecodedText | None:
    """Big5 or GB18030 with a few undecodable bytes, replaced, when it reads as everyday Chinese."""
    best: tuple[float, DecodedText] | None = None
    for encoding in _CHINESE_CODECS:
        text, bad = _decode_marking(data, encoding)
        clean = _MARKS.sub("", text)
        chinese = sum(not char.isascii() for char in clean)
        if _has_controls(clean) or chinese < bad * _CHINESE_CHARACTERS_PER_BAD_BYTE:
            continue
        share = _everyday_chinese_share(clean)
        if share >= _MIN_EVERYDAY_SHARE and (best is None or share > best[0]):
            best = (share, DecodedText(_MARKS.sub("\ufffd", text), encoding, bad))
    return best[1] if best else None


def _decode_marking(data: bytes, encoding: str) -> tuple[str, int]:
    """The text with every undecodable byte marked, and how many there were."""
    text = data.decode(encoding, _MARK_ERRORS)
    return text, len(_MARKS.findall(text))


def _western(data: bytes) -> DecodedText | None:
    """The CP1252 reading when it reads like Western text: mostly ASCII, accented letters
    inside words of ASCII letters. Central European code pages also pass and are misread."""
    text = _strict_decode(data, "cp1252")
    if text is None or _has_controls(text):
        return None
    visible = [char for char in text if not char.isspace()]
    non_ascii = sum(not char.isascii() for char in visible)
    if not visible or non_ascii > _MAX_WESTERN_NON_ASCII_SHARE * len(visible):
        return None
    accented = [word for word in _LETTER_RUN.findall(text) if not word.isascii()]
    western = sum(len(word) == 1 or any(char.isascii() for char in word) for word in accented)
    if western < _MIN_WESTERN_WORD_SHARE * len(accented):
        return None
    return DecodedText(text, "cp1252")


def _has_controls(text: str) -> bool:
    """Whether the text holds control characters other than tabs and line breaks."""
    return any(
        unicodedata.category(char) == "Cc" and char not in _TEXT_CONTROLS for char in set(text)
    )


def _everyday_chinese_share(text: str, *, western: bool = False) -> float:
    """Share of non-ASCII characters that are common hanzi or CJK punctuation; 0 without hanzi.

    With `western`, Latin letters and symbols count as everyday too, and a text needs ASCII
    letters or hanzi (all-ASCII text scores 1).
    """
    non_ascii = [char for char in text if not char.isascii()]
    common = _common_hanzi()
    if western:
        if not non_ascii:
            return 1.0 if text else 0.0
        if not any(char in common or (char.isascii() and char.isalpha()) for char in text):
            return 0.0
    elif not any(char in common for char in non_ascii):
        return 0.0
    everyday = sum(
        char in common or _is_cjk_punctuation(char) or (western and ord(char) <= _LATIN_LAST)
        for char in non_ascii
    )
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


def _decode_with_charset_normalizer(data: bytes) -> DecodedText:
    """Decode with charset-normalizer's best guess, refusing when it finds nothing plausible."""
    best = from_bytes(data).best()
    if best is None:
        raise UndecodableError("looks like binary data (no plausible text encoding found)")
    return DecodedText(str(best), best.encoding)


def _normalise_newlines(text: str) -> str:
    """Turn Windows and old Mac line endings into "\\n"."""
    return text.replace("\r\n", "\n").replace("\r", "\n")
