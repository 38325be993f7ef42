"""A small client for OpenAI-compatible chat completions (`POST {base}/chat/completions`).

OpenAI, Ollama, vLLM, llama.cpp's server, LM Studio and OpenRouter all speak this protocol.
Calls block (the answer engine runs in worker threads) and stream the reply as server-sent
events. Busy or failing endpoints (408, 429, 5xx, refused connections) are retried with
exponential backoff, honouring a short `Retry-After`; everything else, and a reply slower than
the timeout, is an `LLMUnavailableError` at once. Its message is for logs: the endpoint's words
are redacted (the key, URL credentials, anything key-shaped) before they are shortened, and
front ends show their own text instead.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
from pydantic import SecretStr

from index.http_retry import is_retryable, retry_delay
from index.redaction import redact, redact_url, url_secrets

log = logging.getLogger("citebot.llm")

ChatMessage = dict[str, str]

# How much of an endpoint's error body goes into the log.
_ERROR_EXCERPT_CHARS = 300


@dataclass(frozen=True)
class ChatEndpoint:
    """Where and how to ask: the endpoint's base URL (ending in `/v1` for most servers), the
    model, an optional API key, the longest wait for the next bytes of a reply, and retries."""

    base_url: str
    model: str
    api_key: SecretStr | None
    timeout_seconds: float
    max_retries: int
    temperature: float


class LLMUnavailableError(Exception):
    """The endpoint gave no usable reply; the message says why, for the log only."""


class ChatClient:
    """Asks one model at one endpoint for chat completions, whole or streamed."""

    def __init__(self, endpoint: ChatEndpoint, *, backoff_seconds: float = 0.5) -> None:
        """`backoff_seconds`: the first wait before a retry without `Retry-After`; it doubles."""
        self.endpoint = endpoint
        self._url = endpoint.base_url.rstrip("/") + "/chat/completions"
        self._backoff_seconds = backoff_seconds

    @property
    def model(self) -> str:
        """The model every request names."""
        return self.endpoint.model

    def complete(self, messages: list[ChatMessage]) -> str:
        """The model's whole reply to `messages`."""
        return self._request(messages, on_text=None)

    def stream(self, messages: list[ChatMessage], on_text: Callable[[str], None]) -> str:
        """The model's reply, with `on_text` called with the text so far as tokens arrive."""
        return self._request(messages, on_text=on_text)

    def _request(self, messages: list[ChatMessage], on_text: Callable[[str], None] | None) -> str:
        """Send, retrying busy or failing endpoints; raise `LLMUnavailableError` when it fails."""
        body = {
            "model": self.endpoint.model,
            "messages": messages,
            "temperature": self.endpoint.temperature,
            "stream": on_text is not None,
        }
        attempts = self.endpoint.max_retries + 1
        attempt = 0
        while True:
            attempt += 1
            try:
                with (
                    httpx.Client(timeout=self.endpoint.timeout_seconds) as http,
                    http.stream("POST", self._url, json=body, headers=self._headers()) as response,
                ):
                    if response.status_code == 200:
                        return _read_reply(response, on_text)
                    failure = f"HTTP {response.status_code}: {self._excerpt(response.read())}"
                    if not is_retryable(response.status_code):
                        raise LLMUnavailableError(failure)
                    delay = retry_delay(
                        response.headers.get("retry-after"), attempt, self._backoff_seconds
                    )
            except httpx.TimeoutException:
                raise LLMUnavailableError(
                    f"no reply within {self.endpoint.timeout_seconds:g} s"
                ) from None
            except httpx.TransportError as error:
                failure = f"cannot reach {redact_url(self._url)}: {self._redact(repr(error))}"
                delay = retry_delay(None, attempt, self._backoff_seconds)
            if delay is None:
                raise LLMUnavailableError(f"{failure}; Retry-After is too long to wait")
            if attempt == attempts:
                raise LLMUnavailableError(f"{failure}; gave up after {attempts} attempt(s)")
            log.warning("LLM attempt %d of %d failed: %s; retrying", attempt, attempts, failure)
            time.sleep(delay)

    def _headers(self) -> dict[str, str]:
        key = self.endpoint.api_key
        return {"Authorization": f"Bearer {key.get_secret_value()}"} if key else {}

    def _excerpt(self, raw: bytes) -> str:
        """The start of an error body for the log, redacted first: a key the endpoint echoes
        must not survive the cut as its first few characters."""
        text = self._redact(" ".join(raw.decode("utf-8", "replace").split()))
        return text[:_ERROR_EXCERPT_CHARS]

    def _redact(self, text: str) -> str:
        key = self.endpoint.api_key
        secrets = [key.get_secret_value() if key else None, *url_secrets(self.endpoint.base_url)]
        return redact(text, secrets)


def _read_reply(response: httpx.Response, on_text: Callable[[str], None] | None) -> str:
    """The reply's text, from server-sent events or (a server may ignore `stream`) JSON."""
    try:
        if response.headers.get("content-type", "").startswith("text/event-stream"):
            text = _read_events(response, on_text or (lambda _: None))
        else:
            text = _message_content(json.loads(response.read()))
            if on_text is not None and text:
                on_text(text)
    except httpx.HTTPError as error:
        raise LLMUnavailableError(f"the reply broke off: {error!r}") from None
    except (ValueError, KeyError, IndexError, TypeError) as error:
        raise LLMUnavailableError(f"malformed reply: {error!r}") from None
    if not text.strip():
        raise LLMUnavailableError("empty reply")
    return text


def _read_events(response: httpx.Response, on_text: Callable[[str], None]) -> str:
    """Accumulate `data: {...}` chunks until `data: [DONE]` or the end of the stream."""
    parts: list[str] = []
    for line in response.iter_lines():
        if not line.startswith("data:"):
            continue
        data = line.removeprefix("data:").strip()
        if data == "[DONE]":
            break
        chunk = json.loads(data)
        if "error" in chunk:
            raise LLMUnavailableError(f"error in the stream: {str(chunk['error'])[:200]}")
        delta = chunk["choices"][0]["delta"].get("content") if chunk.get("choices") else None
        if delta:
            parts.append(delta)
            on_text("".join(parts))
    return "".join(parts)


def _message_content(payload: Any) -> str:
    return payload["choices"][0]["message"]["content"] or ""
