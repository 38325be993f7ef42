"""When to retry an HTTP endpoint (the chat model, the embedding server) and how long to wait.

Busy or failing endpoints (408, 429, 5xx, refused connections) are retried with exponential
backoff and jitter, honouring a short `Retry-After`; a longer one is not waited for, since
someone is waiting for the answer.
"""

from __future__ import annotations

import random
import time
from email.utils import parsedate_to_datetime

MAX_RETRY_AFTER_SECONDS = 10.0
_RETRYABLE_STATUS = frozenset({408, 429})


def is_retryable(status: int) -> bool:
    """Whether an HTTP status means "try again later" rather than "this request is wrong"."""
    return status in _RETRYABLE_STATUS or status >= 500


def retry_delay(retry_after: str | None, attempt: int, backoff_seconds: float) -> float | None:
    """Seconds to wait before attempt `attempt + 1`: the endpoint's `Retry-After` when it gives
    one, else `backoff_seconds` doubled per attempt; None when `Retry-After` asks too long."""
    if retry_after is not None:
        seconds = _retry_after_seconds(retry_after)
        if seconds is not None:
            return seconds if seconds <= MAX_RETRY_AFTER_SECONDS else None
    return backoff_seconds * 2 ** (attempt - 1) * random.uniform(1.0, 1.25)


def _retry_after_seconds(value: str) -> float | None:
    """`Retry-After` as seconds: a number, or an HTTP date; None if it is neither."""
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None
