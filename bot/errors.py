"""User-facing errors of the answer engine and the front ends, under the one `CitebotError` root.

The CLI and the Discord error handler turn only these into user messages; any other exception
is a bug and is logged with its traceback.
"""

from __future__ import annotations

from index.errors import CitebotError, ConfigError


class QuestionError(CitebotError, ValueError):
    """The question cannot be asked as given; the message says why, for the user."""


class BotStartError(CitebotError):
    """The bot cannot start (no token, Discord unreachable or rejecting it); the message says
    which."""


__all__ = ["BotStartError", "CitebotError", "ConfigError", "QuestionError"]
