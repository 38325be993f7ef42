"""The chat client against the fake endpoint: requests, streaming, retries, timeouts, secrets."""

from __future__ import annotations

import logging
import time
from itertools import pairwise

import pytest
from pydantic import SecretStr

from bot.answer.llm.client import ChatClient, LLMUnavailableError
from tests.bot.conftest import FAKE_API_KEY, FAKE_MODEL
from tests.helpers.fake_llm import FakeLLM, Reply
from tests.helpers.settings import chat_endpoint

MESSAGES = [{"role": "system", "content": "rules"}, {"role": "user", "content": "question"}]


def client(llm: FakeLLM, api_key: str | None = FAKE_API_KEY) -> ChatClient:
    """A client of the fake with a short timeout, two retries and quick backoff."""
    endpoint = chat_endpoint(
        llm.base_url,
        FAKE_MODEL,
        api_key=SecretStr(api_key) if api_key else None,
        timeout_seconds=0.5,
        max_retries=2,
    )
    return ChatClient(endpoint, backoff_seconds=0.05)


def test_a_streamed_reply_arrives_piece_by_piece_and_whole(fake_llm: FakeLLM) -> None:
    fake_llm.script(Reply.answer("TBD distilled Gemma, gpt-oss and Qwen [1]."))
    seen: list[str] = []

    reply = client(fake_llm).stream(MESSAGES, seen.append)

    assert reply == "TBD distilled Gemma, gpt-oss and Qwen [1]."
    assert len(seen) > 3
    assert seen[-1] == reply
    assert all(later.startswith(earlier) for earlier, later in pairwise(seen))
    [request] = fake_llm.requests
    assert request.headers["Authorization"] == f"Bearer {FAKE_API_KEY}"
    assert request.body["model"] == FAKE_MODEL
    assert request.body["messages"] == MESSAGES
    assert request.body["stream"] is True


def test_a_whole_reply_without_a_key_sends_no_authorization(fake_llm: FakeLLM) -> None:
    fake_llm.script(Reply.answer("A standalone question?"))

    assert client(fake_llm, api_key=None).complete(MESSAGES) == "A standalone question?"
    [request] = fake_llm.requests
    assert "Authorization" not in request.headers
    assert request.body["stream"] is False


def test_429_is_retried_after_the_retry_after_it_asks_for(fake_llm: FakeLLM) -> None:
    fake_llm.script(Reply.error(429, retry_after=1), Reply.answer("Done [1]."))

    assert client(fake_llm).complete(MESSAGES) == "Done [1]."
    first, second = fake_llm.requests
    assert second.received_at - first.received_at >= 0.95


def test_5xx_is_retried_with_backoff_then_given_up(fake_llm: FakeLLM) -> None:
    fake_llm.script(Reply.error(500), Reply.error(502), Reply.error(503))

    with pytest.raises(LLMUnavailableError, match=r"HTTP 503.*gave up after 3"):
        client(fake_llm).complete(MESSAGES)
    assert len(fake_llm.requests) == 3


@pytest.mark.parametrize(
    "reply",
    [Reply.error(401, "invalid api key"), Reply.error(429, retry_after=120)],
    ids=["client error", "retry-after too long"],
)
def test_some_failures_are_not_retried(fake_llm: FakeLLM, reply: Reply) -> None:
    fake_llm.script(reply)

    with pytest.raises(LLMUnavailableError):
        client(fake_llm).complete(MESSAGES)
    assert len(fake_llm.requests) == 1


def test_a_reply_slower_than_the_timeout_fails_at_the_timeout(fake_llm: FakeLLM) -> None:
    fake_llm.script(Reply.slow(3.0))
    started = time.monotonic()

    with pytest.raises(LLMUnavailableError, match=r"no reply within 0\.5 s"):
        client(fake_llm).stream(MESSAGES, lambda _: None)
    assert time.monotonic() - started < 2.0


def test_an_unreachable_endpoint_is_unavailable(fake_llm: FakeLLM) -> None:
    port = fake_llm.base_url.rsplit(":", 1)[1].split("/")[0]
    fake_llm.stop()
    endpoint = chat_endpoint(f"http://127.0.0.1:{port}/v1", FAKE_MODEL, max_retries=1)

    with pytest.raises(LLMUnavailableError, match="cannot reach"):
        ChatClient(endpoint, backoff_seconds=0.01).complete(MESSAGES)


def test_the_api_key_never_reaches_errors_or_logs(
    fake_llm: FakeLLM, caplog: pytest.LogCaptureFixture
) -> None:
    echo = f"Incorrect API key provided: {FAKE_API_KEY}"
    fake_llm.script(Reply.error(500, echo), Reply.error(401, echo))

    with caplog.at_level(logging.DEBUG), pytest.raises(LLMUnavailableError) as failure:
        client(fake_llm).complete(MESSAGES)

    assert "Incorrect API key provided: ***" in str(failure.value)
    assert FAKE_API_KEY not in str(failure.value)
    assert "Incorrect API key provided: ***" in caplog.text
    assert FAKE_API_KEY not in caplog.text
