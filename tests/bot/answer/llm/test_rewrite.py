"""Questions rewritten into the articles' language before retrieval, over a real index (bundled
model, embedded Chroma) with the fake endpoint: what is asked, what retrieval gets from it, and
that every failure leaves the question as asked."""

from __future__ import annotations

import logging

import pytest

from bot.answer.conversation import LLMQueryCondenser, RecentQuestionsCondenser, Turn
from bot.answer.engine import Engine
from bot.answer.llm.answerer import CHECK_FAILED
from bot.answer.pipeline import AnswerPipeline
from bot.settings import Settings
from tests.bot.conftest import FAKE_API_KEY, with_llm
from tests.bot.discord.conftest import make_settings, write_articles
from tests.helpers.embedders import MemoisingEmbedder
from tests.helpers.fake_llm import FakeLLM, Reply

# Holloway is written only as 荷洛薇, and no article glosses it: the question's words find the
# other factory (Krauss's) unless the question is also searched for in Chinese.
FACTORY_ARTICLES = {
    "holloway-factory.md": (
        "---\ntitle: 電池新創加碼投資\ndate: 2025-11-20\n---\n"
        "電池新創公司晶能科技的執行長荷洛薇表示，公司將在台南科學園區興建第二座工廠，"
        "預計 2027 年量產固態電池。荷洛薇說，新廠將雇用約八百名員工。\n"
    ),
    "krauss-factory.md": (
        "---\ntitle: 德國車廠宣布設廠計畫\ndate: 2025-11-18\n---\n"
        "德國汽車零件大廠的執行長克勞斯宣布，將在高雄興建新的電動車馬達工廠，"
        "工廠預計 2026 年投產。克勞斯表示，工廠選址考量的是港口與供應鏈。\n"
    ),
    "taipei-metro.md": (
        "---\ntitle: 捷運環狀線北環段\ndate: 2025-11-02\n---\n"
        "台北市捷運工程局表示，環狀線北環段工程進度順利，預計 2030 年底完工通車。\n"
    ),
}
QUESTION = "Where is Holloway building a factory, and when will it open?"
REWRITE = "荷洛薇要在哪裡蓋工廠？何時投產？"
# What a model that answers from the first passage says: only Holloway's passage supports it.
FIRST_PASSAGE_ANSWER = "The second factory is being built in the Tainan Science Park for 2027 [1]."


@pytest.fixture(scope="module")
def indexed(
    tmp_path_factory: pytest.TempPathFactory, embedder: MemoisingEmbedder
) -> tuple[Settings, MemoisingEmbedder]:
    """Settings and embedder over the factory articles, all written in Chinese."""
    root = tmp_path_factory.mktemp("rewrite")
    articles = write_articles(root / "articles", FACTORY_ARTICLES)
    settings = make_settings(root / "data", articles, chunk_tokens=128, chunk_overlap_tokens=16)
    Engine(settings, embedder=embedder).corpus().sync([articles])
    return settings, embedder


def answerer_of(engine: Engine) -> AnswerPipeline:
    return engine.responder(engine.retriever())


@pytest.fixture
def engine(indexed: tuple[Settings, MemoisingEmbedder], fake_llm: FakeLLM) -> Engine:
    """An engine answering through the fake endpoint, rewriting questions."""
    settings, embedder = indexed
    return Engine(with_llm(settings, fake_llm, llm_rewrite_queries=True), embedder=embedder)


def test_the_rewrite_finds_the_article_that_writes_the_name_in_chinese(
    engine: Engine, indexed: tuple[Settings, MemoisingEmbedder], fake_llm: FakeLLM
) -> None:
    answerer = answerer_of(engine)
    fake_llm.script(Reply.answer(REWRITE), Reply.answer(FIRST_PASSAGE_ANSWER))

    answer = answerer.answer(QUESTION)

    rewrite, answer_request = fake_llm.requests
    assert "news articles written in Chinese" in rewrite.system
    assert "Traditional Chinese" in rewrite.system
    assert "Zuckerberg as 查克柏格" in rewrite.system
    assert rewrite.user == f"<<question>>\n{QUESTION}\n<<end question>>"
    assert rewrite.body["stream"] is False
    assert f"Question: {QUESTION}" in answer_request.user  # answered as asked
    assert REWRITE not in answer_request.user
    assert answer.question == QUESTION
    assert answer.mode == "generated"
    assert answer.retrieved[0].article_id == "holloway-factory.md"
    assert [citation.article for citation in answer.citations] == ["holloway-factory.md"]

    # Without the rewrite, the question's words find the other factory first.
    settings, embedder = indexed
    plain = answerer_of(Engine(with_llm(settings, fake_llm), embedder=embedder))
    fake_llm.script(Reply.answer(FIRST_PASSAGE_ANSWER))
    unaided = plain.answer(QUESTION)
    assert len(fake_llm.requests) == 3  # no rewrite was asked for
    assert unaided.retrieved[0].article_id == "krauss-factory.md"
    assert unaided.notice == CHECK_FAILED


def test_retrieval_searches_with_both_wordings_and_the_same_question_costs_one_rewrite(
    engine: Engine, fake_llm: FakeLLM
) -> None:
    answerer = answerer_of(engine)
    fake_llm.script(Reply.answer(f"「{REWRITE}」\n"))

    first = answerer.retrieve(QUESTION)
    again = answerer.retrieve(QUESTION)

    assert len(fake_llm.requests) == 1
    assert first.query == again.query == QUESTION
    assert first.rewrites == again.rewrites == (REWRITE,)
    assert first.chunks[0].article_id == "holloway-factory.md"
    assert first.same_script  # judged as the Chinese wording, the one the articles match best


def test_a_question_in_the_articles_language_is_not_rewritten(
    engine: Engine, fake_llm: FakeLLM
) -> None:
    retrieval = answerer_of(engine).retrieve(REWRITE)

    assert fake_llm.requests == []
    assert retrieval.rewrites == ()
    assert retrieval.chunks[0].article_id == "holloway-factory.md"


@pytest.mark.parametrize(
    "failure",
    [Reply.error(400, f"bad request for key {FAKE_API_KEY}"), Reply.slow(3.0, REWRITE)],
    ids=["error", "timeout"],
)
def test_when_the_model_fails_the_question_is_searched_as_asked(
    engine: Engine, fake_llm: FakeLLM, caplog: pytest.LogCaptureFixture, failure: Reply
) -> None:
    fake_llm.script(failure, Reply.answer(FIRST_PASSAGE_ANSWER))

    with caplog.at_level(logging.WARNING, logger="citebot.llm"):
        answer = answerer_of(engine).answer(QUESTION)

    assert len(fake_llm.requests) == 2  # the failed rewrite, then the answer
    assert answer.question == QUESTION
    assert answer.retrieved[0].article_id == "krauss-factory.md"
    [warning] = [r for r in caplog.records if "searching with the question as asked" in r.message]
    assert FAKE_API_KEY not in caplog.text
    assert "\n" not in warning.getMessage()


@pytest.mark.parametrize(
    "reply",
    [
        f"Sure! Here it is:\n{REWRITE}",  # more than the question
        "Where is Holloway building a factory?",  # not in the articles' language
        "荷洛薇" * 400,  # longer than a question may be
    ],
    ids=["two-lines", "wrong-language", "too-long"],
)
def test_an_unusable_rewrite_is_not_searched_for(
    engine: Engine, fake_llm: FakeLLM, reply: str
) -> None:
    fake_llm.script(Reply.answer(reply))

    retrieval = answerer_of(engine).retrieve(QUESTION)

    assert len(fake_llm.requests) == 1
    assert retrieval.rewrites == ()
    assert retrieval.query == QUESTION


def test_a_follow_up_is_condensed_and_rewritten_in_one_call(
    engine: Engine, fake_llm: FakeLLM
) -> None:
    assert isinstance(engine.condenser(), LLMQueryCondenser)
    history = [Turn("What is Holloway's company building?", "A second factory [1].")]
    follow_up = "where, and when will it open?"
    standalone = "Where is Holloway's company building its factory, and when will it open?"
    fake_llm.script(Reply.answer(f"{standalone}\n{REWRITE}"), Reply.answer(FIRST_PASSAGE_ANSWER))

    answer = answerer_of(engine).answer(follow_up, history=history)

    condense, answer_request = fake_llm.requests  # no rewrite call of its own
    assert "Reply with exactly two lines" in condense.system
    assert "Traditional Chinese" in condense.system
    assert condense.user.endswith(f"Follow-up question: {follow_up}")
    assert f"Question: {standalone}" in answer_request.user
    assert answer.question == standalone
    assert answer.retrieved[0].article_id == "holloway-factory.md"


def test_a_follow_up_the_model_failed_to_condense_is_not_sent_to_it_again(
    engine: Engine, fake_llm: FakeLLM
) -> None:
    condenser, answerer = engine.condenser(), answerer_of(engine)
    history = [Turn("What is Holloway's company building?", "A second factory [1].")]
    follow_up = "where, and when will it open?"
    fake_llm.script(Reply.error(400))

    query = condenser.condense(history, follow_up)
    retrieval = answerer.retrieve(query)

    assert query == RecentQuestionsCondenser(1000).condense(history, follow_up)
    assert len(fake_llm.requests) == 1
    assert retrieval.rewrites == ()
