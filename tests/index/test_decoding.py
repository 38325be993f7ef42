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
    assert decode_bytes(TRADITIONAL_NEWS.encode(codec)).text == TRADITIONAL_NEWS


def test_gb18030_news_decodes_exactly() -> None:
    assert decode_bytes(SIMPLIFIED_NEWS.encode("gb18030")).text == SIMPLIFIED_NEWS


def test_traditional_text_saved_as_gb18030_decodes_exactly() -> None:
    assert decode_bytes(TRADITIONAL_NEWS.encode("gb18030")).text == TRADITIONAL_NEWS


@pytest.mark.parametrize("text", SHORT_TRADITIONAL)
def test_short_big5_text_is_not_misread_as_another_codepage(text: str) -> None:
    assert decode_bytes(text.encode("cp950")).text == text


def test_short_gb18030_text_decodes_exactly() -> None:
    assert decode_bytes("人工智能模型".encode("gb18030")).text == "人工智能模型"


@pytest.mark.parametrize("codec", ["cp950", "gb18030"])
def test_english_with_a_few_chinese_words_decodes_exactly(codec: str) -> None:
    assert decode_bytes(MIXED_ENGLISH.encode(codec)).text == MIXED_ENGLISH


def test_cp950_only_characters_decode() -> None:
    text = "執行長馬克‧祖克柏表示，每股價格為 5€，約 3～5 個月推出。"
    assert decode_bytes(text.encode("cp950")).text == text


def test_shift_jis_japanese_is_not_read_as_chinese() -> None:
    # GB18030 decodes these bytes without error, into rare hanzi: the plausibility check rejects it.
    text = "東京電力は十日、新しい発電所の建設計画を発表した。関係者によると、来春に着工する。"
    assert decode_bytes(text.encode("shift_jis")).text == text


def test_western_legacy_text_is_not_read_as_chinese() -> None:
    # charset-normalizer alone picks cp1250 here ("après" -> "aprčs").
    text = "Le café de la gare a fermé ses portes après trente ans, déplore un habitué."
    assert decode_bytes(text.encode("cp1252")).text == text


@pytest.mark.parametrize(
    "codec", ["utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-8"]
)
def test_unicode_encodings_decode_without_bom(codec: str) -> None:
    text = "Meta 轉向閉源模型\nsecond line"
    data = text.encode(codec)
    if codec in ("utf-16-le", "utf-16-be"):
        data = "\ufeff".encode(codec) + data
    assert decode_bytes(data).text == text


def test_newlines_are_normalised() -> None:
    assert decode_bytes("一\r\n二\r三\n".encode()).text == "一\n二\n三\n"


def test_empty_bytes_are_empty_text() -> None:
    assert decode_bytes(b"").text == ""


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


ENGLISH_NEWS = (
    "The company\u2019s chief executive said on Monday that \u201cthe new model is ready\u201d "
    "\u2013 a claim analysts doubted. Shares rose 3% to \u00a3120; the caf\u00e9 opened at "
    "9\u00a0a.m. \u2026 and closed at noon.\n"
)


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be"])
@pytest.mark.parametrize(
    "text",
    [
        TRADITIONAL_NEWS + "\n第二段。",
        MIXED_ENGLISH,
        ENGLISH_NEWS,
        "颱風來襲台積電股價上漲",
        "台積電今天宣布在高雄新建一座先進封裝廠，預計兩年後量產。",
    ],
    ids=["chinese", "mixed", "mostly-ascii", "no-ascii", "no-ascii-with-nul-bytes"],
)
def test_utf16_without_bom_decodes_in_either_byte_order(codec: str, text: str) -> None:
    decoded = decode_bytes(text.encode(codec))
    assert decoded.text == text
    assert decoded.encoding == codec
    assert decoded.replaced_bytes == 0


@pytest.mark.parametrize(
    ("codec", "text"),
    [
        ("cp1252", "Price: \u00a3120 \u2013 or \u20ac140."),
        ("cp1252", "He said \u201cno\u201d."),
        ("cp1252", ENGLISH_NEWS),
        ("latin-1", "Na\u00efve co\u00f6peration at the d\u00e9but."),
    ],
)
def test_western_english_decodes_without_mojibake(codec: str, text: str) -> None:
    # charset-normalizer alone reads the first two as cp1250/cp1251 ("Ż120", "УnoФ").
    decoded = decode_bytes(text.encode(codec))
    assert decoded.text == text
    assert decoded.note is None


def test_utf8_with_a_few_invalid_bytes_is_decoded_with_replacements_and_reported() -> None:
    text = TRADITIONAL_NEWS * 3
    damaged = b"\xff".join(part.encode("utf-8") for part in (text[:10], text[10:30], text[30:]))
    decoded = decode_bytes(damaged + b"\xc3")  # two stray bytes and a cut-off character
    assert decoded.replaced_bytes == 3
    assert decoded.note == "3 undecodable bytes replaced (read as utf-8)"
    assert decoded.text.count("\ufffd") == 3
    assert decoded.text.replace("\ufffd", "") == text


def test_english_utf8_with_one_stray_byte_keeps_its_typography() -> None:
    data = ENGLISH_NEWS.encode("utf-8").replace(b"Monday", b"Mon\x9cday")
    decoded = decode_bytes(data)
    assert decoded.text == ENGLISH_NEWS.replace("Monday", "Mon\ufffdday")
    assert decoded.replaced_bytes == 1


def test_big5_with_a_few_invalid_bytes_is_decoded_with_replacements_and_reported() -> None:
    text = TRADITIONAL_NEWS * 3
    damaged = b"\xff" + text[:20].encode("cp950") + b"\xff" + text[20:].encode("cp950") + b"\xff"
    decoded = decode_bytes(damaged)
    assert decoded.encoding == "cp950"
    assert decoded.replaced_bytes == 3
    assert decoded.text == "\ufffd" + text[:20] + "\ufffd" + text[20:] + "\ufffd"


def test_real_binary_files_are_still_refused() -> None:
    import gzip
    import io
    import sys
    import zipfile

    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zipped:
        zipped.writestr("a.txt", TRADITIONAL_NEWS * 20)
    with open(sys.executable, "rb") as executable:
        elf = executable.read(64 * 1024)
    samples = {
        "png": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + _random_bytes(4000, seed=3),
        "jpeg": b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + _random_bytes(4000, seed=4),
        "zip": archive.getvalue(),
        "gzip": gzip.compress((TRADITIONAL_NEWS * 50).encode()),
        "executable": elf,
        "even random": _random_bytes(4000, seed=5).replace(b"\x00", b"\x01"),
    }
    refused = {}
    for name, data in samples.items():
        try:
            refused[name] = f"decoded as {decode_bytes(data).encoding}"
        except UndecodableError as error:
            refused[name] = str(error)
    assert all("binary" in reason for reason in refused.values()), refused
