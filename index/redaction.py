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

_PATTERNS = (
    # URL userinfo: scheme://user:password@host
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s@]+@"), rf"\1{MASK}@"),
    # Authorization header values, as sent or echoed (a value with a digit or sign in it:
    # "basic information" is no credential).
    (
        re.compile(r"(?i)\b(bearer|basic|bot)(\s+|%20)(?=[\w.~+/=-]*[\d._~+/=-])[\w.~+/=-]{8,}"),
        rf"\1\2{MASK}",
    ),
    # OpenAI-style keys (sk-…, sk-proj-…), also when an endpoint masks their middle.
    (re.compile(r"\bsk-[A-Za-z0-9_*.-]{4,}"), MASK),
    # Discord bot tokens: base64 user id, timestamp, HMAC.
    (re.compile(r"\b[A-Za-z0-9_-]{20,}\.[A-Za-z0-9_-]{6,7}\.[A-Za-z0-9_-]{27,}"), MASK),
    # key=value / "key": "value" pairs whose name says they hold a credential.
    (
        re.compile(
            r"(?i)((?:api[-_]?key|token|secret|password|passwd|authorization)"
            r"[\"']?\s*[:=]\s*[\"']?)(?!\*\*\*)[^\s\"',;&}]{4,}"
        ),
        rf"\1{MASK}",
    ),
)

_lock = threading.Lock()
_known: frozenset[str] = frozenset()
_known_pattern: re.Pattern[str] | None = None


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """`text` without credentials: `secrets` and those registered for the logs are masked,
    in any case and in fragments, then every credential-shaped string."""
    pattern = _secrets_pattern(_known.union(_usable(secrets))) if secrets else _known_pattern
    if pattern is not None:
        text = pattern.sub(MASK, text)
    for credential, replacement in _PATTERNS:
        text = credential.sub(replacement, text)
    return text


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
    global _known, _known_pattern
    with _lock:
        _known = _known.union(_usable(secrets))
        _known_pattern = _secrets_pattern(_known)
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


def _usable(secrets: Iterable[str | None]) -> set[str]:
    return {s for s in secrets if s and len(s.strip()) >= _MIN_SECRET_CHARS}


def _secrets_pattern(secrets: Iterable[str]) -> re.Pattern[str] | None:
    """One case-insensitive pattern for the secrets and every run of `_FRAGMENT_CHARS` of
    their characters; longest alternatives first, so a whole secret is masked as one."""
    pieces: set[str] = set()
    for secret in secrets:
        pieces.add(secret)
        pieces.update(
            secret[i : i + _FRAGMENT_CHARS] for i in range(len(secret) - _FRAGMENT_CHARS + 1)
        )
    if not pieces:
        return None
    ordered = sorted(pieces, key=len, reverse=True)
    return re.compile("(?:" + "|".join(map(re.escape, ordered)) + ")+", re.IGNORECASE)
