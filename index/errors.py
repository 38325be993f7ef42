"""The root of every error a user can act on.

A `CitebotError`'s message says what went wrong and what to do; front ends (the CLI, the
Discord bot) show exactly these to people, and let anything else surface as a bug with its
traceback in the log. It lives in `index/`, the lowest layer, so both layers can raise it.
"""

from __future__ import annotations


class CitebotError(Exception):
    """A problem the user can act on; the message is meant to be shown as it is."""


class ConfigError(CitebotError, ValueError):
    """A setting or configuration file holds a value Citebot cannot use."""
