"""decode_bytes: BOMs, UTF-8, Big5/CP950 and GB18030 round trips, and refusing binary data."""

from __future__ import annotations

import random

import pytest

from index.decoding import UndecodableError, decode_bytes

TRADITIONAL_NEWS = (
    "知情人士表示，TBD 團隊在訓練 Avocado 時，同時擷取第三方模型。"
    "彭博引述多位知情人士報導，執行長近來親自介入 AI 研發的日常工作。"
)
SIMPLIFIED_NEWS = (
    "知情人士表示，该团队在训练新模型时，同时提取了第三方模型，包括阿里巴巴旗下的通义千问。"
    "据报道，新模型预计明年春季以闭源模式亮相。"
)
# charset-normalizer misreads these on its own: as cp949, UTF-16, or finds no encoding at all.
SHORT_TRADITIONAL = [
    "台積電股價上漲。",
    "颱風來襲",
    "他說：「這是“最好”的方案……」——記者王小明報導。",
]
MIXED_ENGLISH = (
    "The Taipei Times reported on Monday that TSMC (台積電) would expand its Arizona plant. "
    "Analysts expect revenue to grow as demand for AI chips remains strong."
)


def _random_bytes(count: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(count)


@pytest.mark.parametrize("codec", ["big5", "cp950"])
def test_big5_news_decodes_exactly(codec: str) -> None:
    assert decode_bytes(TRADITIONAL_NEWS.encode(codec)) == TRADITIONAL_NEWS


def test_gb18030_news_decodes_exactly() -> None:
    assert decode_bytes(SIMPLIFIED_NEWS.encode("gb18030")) == SIMPLIFIED_NEWS


def test_traditional_text_saved_as_gb18030_decodes_exactly() -> None:
    assert decode_bytes(TRADITIONAL_NEWS.encode("gb18030")) == TRADITIONAL_NEWS


@pytest.mark.parametrize("text", SHORT_TRADITIONAL)
def test_short_big5_text_is_not_misread_as_another_codepage(text: str) -> None:
    assert decode_bytes(text.encode("cp950")) == text


def test_short_gb18030_text_decodes_exactly() -> None:
    assert decode_bytes("人工智能模型".encode("gb18030")) == "人工智能模型"


@pytest.mark.parametrize("codec", ["cp950", "gb18030"])
def test_english_with_a_few_chinese_words_decodes_exactly(codec: str) -> None:
    assert decode_bytes(MIXED_ENGLISH.encode(codec)) == MIXED_ENGLISH


def test_cp950_only_characters_decode() -> None:
    text = "執行長馬克‧祖克柏表示，每股價格為 5€，約 3～5 個月推出。"
    assert decode_bytes(text.encode("cp950")) == text


def test_shift_jis_japanese_is_not_read_as_chinese() -> None:
    # GB18030 decodes these bytes without error, into rare hanzi: the plausibility check rejects it.
    text = "東京電力は十日、新しい発電所の建設計画を発表した。関係者によると、来春に着工する。"
    assert decode_bytes(text.encode("shift_jis")) == text


def test_western_legacy_text_is_not_read_as_chinese() -> None:
    # charset-normalizer may pick cp1250 over cp1252 here ("après" -> "aprčs"): only the
    # accents it agrees on are asserted, plus that no Chinese reading was forced on it.
    text = "Le café de la gare a fermé ses portes après trente ans, déplore un habitué."
    decoded = decode_bytes(text.encode("cp1252"))
    assert decoded.startswith("Le café de la gare a fermé")
    assert all(ord(char) < 0x2E80 for char in decoded)


@pytest.mark.parametrize(
    "codec", ["utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-8"]
)
def test_unicode_encodings_decode_without_bom(codec: str) -> None:
    text = "Meta 轉向閉源模型\nsecond line"
    data = text.encode(codec)
    if codec in ("utf-16-le", "utf-16-be"):
        data = "\ufeff".encode(codec) + data
    assert decode_bytes(data) == text


def test_newlines_are_normalised() -> None:
    assert decode_bytes("一\r\n二\r三\n".encode()) == "一\n二\n三\n"


def test_empty_bytes_are_empty_text() -> None:
    assert decode_bytes(b"") == ""


def test_nul_bytes_mean_binary() -> None:
    png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + _random_bytes(2000, seed=1)
    with pytest.raises(UndecodableError, match="binary"):
        decode_bytes(png)


def test_random_bytes_without_nul_are_refused() -> None:
    data = _random_bytes(4000, seed=2).replace(b"\x00", b"\x01")
    with pytest.raises(UndecodableError, match="binary"):
        decode_bytes(data)


def test_invalid_data_after_a_bom_is_refused() -> None:
    with pytest.raises(UndecodableError, match="byte-order mark"):
        decode_bytes(b"\xef\xbb\xbf" + b"\xff\xfe\xfd broken")


def test_undecodable_error_is_a_value_error() -> None:
    assert issubclass(UndecodableError, ValueError)
