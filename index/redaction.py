"""Secrets out of logs and error excerpts: the one home of the redaction rule.

`redact` blanks out the configured secrets (in any letter case, and any run of 6 or more of
their characters) and whatever looks like a credential whatever its source: URL userinfo
(`user:pass@`), `Bearer`/`Basic`/`Bot` authorization values, `sk-…` API keys, Discord bot
tokens and `token=`/`api_key:`-style pairs. `install_log_redaction` applies it to every log
record as it is created, so no handler (ours, discord.py's, a test's) ever sees a secret, and
to the traceback of an exception nothing caught.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
import traceback
from collections.abc import Iterable
from urllib.parse import urlsplit

MASK = "***"
# A secret shorter than this is not looked for in text: it would blank out ordinary words.
_MIN_SECRET_CHARS = 6
# Any run of this many characters of a secret counts as the secret (an endpoint may echo a
# key shortened, a log line may cut it).
_FRAGMENT_CHARS = 6

# Each credential shape: a cheap test of the lower-cased text (most log lines fail it, and
# the pattern is not run), the pattern, and its replacement.
_PATTERNS = (
    # URL userinfo: scheme://user:password@host
    (
        lambda low: "://" in low and "@" in low,
        re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s@]+@"),
        rf"\1{MASK}@",
    ),
    # Authorization header values, as sent or echoed (a value with a digit or sign in it:
    # "basic information" is no credential).
    (
        lambda low: "bearer" in low or "basic" in low or "bot" in low,
        re.compile(r"(?i)\b(bearer|basic|bot)(\s+|%20)(?=[\w.~+/=-]*[\d._~+/=-])[\w.~+/=-]{8,}"),
        rf"\1\2{MASK}",
    ),
    # OpenAI-style keys (sk-…, sk-proj-…), also when an endpoint masks their middle.
    (lambda low: "sk-" in low, re.compile(r"\bsk-[A-Za-z0-9_*.-]{4,}"), MASK),
    # Discord bot tokens: base64 user id, timestamp, HMAC.
    (
        re.compile(r"\.[\w-]{6,7}\.").search,
        re.compile(r"\b[A-Za-z0-9_-]{20,}\.[A-Za-z0-9_-]{6,7}\.[A-Za-z0-9_-]{27,}"),
        MASK,
    ),
    # key=value / "key": "value" pairs whose name says they hold a credential.
    (
        lambda low: any(name in low for name in ("key", "token", "secret", "passw", "auth")),
        re.compile(
            r"(?i)((?:api[-_]?key|token|secret|password|passwd|authorization)"
            r"[\"']?\s*[:=]\s*[\"']?)(?!\*\*\*)[^\s\"',;&}]{4,}"
        ),
        rf"\1{MASK}",
    ),
)


class _Secrets:
    """Known secrets, found in any case and by any `_FRAGMENT_CHARS` of their characters.

    Substring tests of the fragments tell whether a text holds any (log lines almost never
    do); only then does the slower pattern of them all run, longest alternatives first, so a
    whole secret is masked as one.
    """

    def __init__(self, values: frozenset[str]) -> None:
        self.values = values
        self._fragments = sorted(
            {
                secret[i : i + _FRAGMENT_CHARS].lower()
                for secret in values
                for i in range(len(secret) - _FRAGMENT_CHARS + 1)
            }
        )
        pieces = sorted(values | set(self._fragments), key=len, reverse=True)
        alternatives = "|".join(map(re.escape, pieces))
        self._pattern = re.compile(f"(?:{alternatives})+", re.IGNORECASE) if pieces else None

    def mask(self, text: str) -> str:
        """`text` with every secret and fragment of one masked."""
        if self._pattern is None or not self._holds_fragment(text.lower()):
            return text
        return self._pattern.sub(MASK, text)

    def _holds_fragment(self, low: str) -> bool:
        return any(fragment in low for fragment in self._fragments)


_lock = threading.Lock()
_known = _Secrets(frozenset())


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """`text` without credentials: every credential-shaped string, then `secrets` and those
    registered for the logs, in any case and in fragments. Shapes go first: a known secret's
    fragment masked inside a token would otherwise break the token's shape and leave the rest
    of it readable."""
    low = text.lower()
    for applies, credential, replacement in _PATTERNS:
        if applies(low):
            text = credential.sub(replacement, text)
            low = text.lower()
    known = _Secrets(_known.values | _usable(secrets)) if secrets else _known
    return known.mask(text)


def redact_url(url: str) -> str:
    """A URL fit for a log line or message: its userinfo (user and password) masked."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return parts._replace(netloc=f"{MASK}@{parts.netloc.rsplit('@', 1)[1]}").geturl()


def url_secrets(url: str | None) -> list[str]:
    """The credentials a URL carries in its userinfo (the password, and the user name when
    there is no password: a token passed as `https://TOKEN@host`)."""
    if not url:
        return []
    try:
        parts = urlsplit(url)
    except ValueError:
        return []
    if parts.password:
        return [parts.password]
    return [parts.username] if parts.username else []


def install_log_redaction(secrets: Iterable[str | None] = ()) -> None:
    """Redact every log record from now on, message and traceback, with `secrets` known.

    Installed once (the record factory wraps the previous one), with `sys.excepthook`
    printing redacted tracebacks; a later call only adds secrets, so the CLI and the bot may
    both call it.
    """
    global _known
    with _lock:
        _known = _Secrets(_known.values | _usable(secrets))
        factory = logging.getLogRecordFactory()
        if not getattr(factory, "redacts", False):
            logging.setLogRecordFactory(_redacting_factory(factory))
        if not getattr(sys.excepthook, "redacts", False):
            sys.excepthook = _print_redacted_traceback


def _print_redacted_traceback(kind, error, trace) -> None:  # type: ignore[no-untyped-def]
    """`sys.excepthook`: the traceback Python would print, redacted."""
    sys.stderr.write(redact("".join(traceback.format_exception(kind, error, trace))))


_print_redacted_traceback.redacts = True  # type: ignore[attr-defined]


def _redacting_factory(make_record):  # type: ignore[no-untyped-def]
    """A log record factory that stores the redacted message (and traceback) in the record."""

    def factory(*args, **kwargs):  # type: ignore[no-untyped-def]
        record = make_record(*args, **kwargs)
        try:
            record.msg, record.args = redact(record.getMessage()), ()
        except Exception:  # a bad format string: logging reports it itself later
            return record
        if record.exc_info and not record.exc_text:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return record

    factory.redacts = True  # type: ignore[attr-defined]
    return factory


def _usable(secrets: Iterable[str | None]) -> frozenset[str]:
    return frozenset(s for s in secrets if s and len(s.strip()) >= _MIN_SECRET_CHARS)
