"""Discord's per-message limits, checked on a message's JSON body as Discord's API checks it.

The fake Discord rejects a body with problems (400, "Invalid Form Body") like Discord does, and
unit tests of payload builders use the same check.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

CONTENT = 2000
EMBEDS = 10
EMBEDS_TOTAL = 6000
TITLE = 256
DESCRIPTION = 4096
FIELDS = 25
FIELD_NAME = 256
FIELD_VALUE = 1024
FOOTER = 2048
AUTHOR_NAME = 256
URL = 2048
ACTION_ROWS = 5
ROW_COMPONENTS = 5
CUSTOM_ID = 100
BUTTON_LABEL = 80


def message_problems(body: dict[str, Any]) -> list[str]:
    """Every way a message create or edit body breaks Discord's limits; empty when valid."""
    problems: list[str] = []
    content = body.get("content")
    if content is not None and len(content) > CONTENT:
        problems.append(f"content has {len(content)} characters (limit {CONTENT})")
    embeds = body.get("embeds") or []
    if len(embeds) > EMBEDS:
        problems.append(f"{len(embeds)} embeds (limit {EMBEDS})")
    total = 0
    for index, embed in enumerate(embeds):
        embed_problems, size = _embed_problems(embed)
        problems += [f"embeds[{index}]: {problem}" for problem in embed_problems]
        total += size
    if total > EMBEDS_TOTAL:
        problems.append(f"embeds total {total} characters (limit {EMBEDS_TOTAL})")
    problems += _component_problems(body.get("components") or [])
    return problems


def _embed_problems(embed: dict[str, Any]) -> tuple[list[str], int]:
    """One embed's problems and its size as counted towards the 6000-character total."""
    problems: list[str] = []
    limited = {
        "title": (embed.get("title") or "", TITLE),
        "description": (embed.get("description") or "", DESCRIPTION),
        "footer.text": ((embed.get("footer") or {}).get("text") or "", FOOTER),
        "author.name": ((embed.get("author") or {}).get("name") or "", AUTHOR_NAME),
    }
    fields = embed.get("fields") or []
    if len(fields) > FIELDS:
        problems.append(f"{len(fields)} fields (limit {FIELDS})")
    for number, field in enumerate(fields):
        limited[f"fields[{number}].name"] = (field.get("name") or "", FIELD_NAME)
        limited[f"fields[{number}].value"] = (field.get("value") or "", FIELD_VALUE)
    for name, (text, limit) in limited.items():
        if len(text) > limit:
            problems.append(f"{name} has {len(text)} characters (limit {limit})")
    url = embed.get("url")
    if url is not None and not _well_formed_url(str(url)):
        problems.append(f"url {url!r} is not a well formed URL")
    return problems, sum(len(text) for text, _ in limited.values())


def _component_problems(rows: list[dict[str, Any]]) -> list[str]:
    """Action rows and their buttons."""
    problems: list[str] = []
    if len(rows) > ACTION_ROWS:
        problems.append(f"{len(rows)} action rows (limit {ACTION_ROWS})")
    for row in rows:
        children = row.get("components") or []
        if len(children) > ROW_COMPONENTS:
            problems.append(f"an action row has {len(children)} components (limit 5)")
        for child in children:
            if len(child.get("custom_id") or "") > CUSTOM_ID:
                problems.append(f"custom_id {child['custom_id']!r} is over {CUSTOM_ID} characters")
            if len(child.get("label") or "") > BUTTON_LABEL:
                problems.append(f"label {child['label']!r} is over {BUTTON_LABEL} characters")
    return problems


def _well_formed_url(url: str) -> bool:
    """What Discord links in an embed: http(s), a host with a dot (or an IP), nothing blank."""
    if len(url) > URL or re.search(r"[\s\x00-\x1f\x7f]", url):
        return False
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        parts.port  # noqa: B018 - a port that is not a number raises ValueError
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and ("." in host.strip(".") or ":" in host)
