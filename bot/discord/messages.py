"""Answers, sources and reports as Discord payloads that respect every per-message limit.

Pure functions: they build strings and `discord.Embed`s from engine results and never touch
the index. Article text is untrusted, so mentions in it are neutralised wherever it is placed
(on top of the bot sending with `AllowedMentions.none()`). A citation is one unit: it moves to
the next embed or message whole; only a single over-long quote is shortened with "…".
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

import discord

from bot.answer.engine import IndexStatus
from bot.answer.extractive import Answer, Citation
from bot.discord.channels import Scope
from bot.discord.feedback import ReindexRun
from bot.similarity import SIMILARITY_EXPLAINED, similarity_label
from index.articles import LoadFailure
from index.indexer import IndexPlan, IndexProgress, RunSummary
from index.redaction import redact
from index.store import StoredChunk

# Discord's limits (https://discord.com/developers/docs/resources/message).
CONTENT_LIMIT = 2000
EMBEDS_PER_MESSAGE = 10
EMBEDS_TOTAL_LIMIT = 6000
EMBED_TITLE_LIMIT = 256
EMBED_DESCRIPTION_LIMIT = 4096
EMBED_FIELDS_LIMIT = 25
EMBED_FIELD_NAME_LIMIT = 256
EMBED_FIELD_VALUE_LIMIT = 1024
THREAD_NAME_LIMIT = 100
URL_LIMIT = 2048

# How much of a quote the answer itself shows; the Sources button shows it whole.
QUOTE_PREVIEW_CHARS = 300
GLOSS_CHARS = 300
# Shown after a generated answer's text while it is still being written.
WRITING_MARK = " ✍️"
SEARCH_PASSAGE_CHARS = 700
FOOTER_CHARS = 256
# How much of the question heads an answer posted in the channel.
QUESTION_CHARS = 300
# Article names listed per kind of change before "and N more".
PLAN_NAMES_SHOWN = 5

NO_MENTIONS = discord.AllowedMentions.none()
EMBED_COLOUR = discord.Colour.blurple()

_ZERO_WIDTH_SPACE = "\u200b"
_MENTION = re.compile(r"@(?=everyone|here)|(?<=<)@(?=[!&]?\d)", re.IGNORECASE)
_AFTER_CITATION = re.compile(r"(?<=\])(\s+)")
_TRAILING_MARKER = re.compile(r"\s*\[\d+\]$")
# A linkable host: a dotted name ending in a real top-level label, or an IPv4 / IPv6 address.
_URL_HOST = re.compile(
    r"(?:[\w-]+\.)+(?:[^\W\d_]{2,}|xn--[\w-]+)|\d{1,3}(?:\.\d{1,3}){3}|[\da-f.]*:[\da-f:.]*"
)
_NOT_IN_URL = re.compile(r"[\s\x00-\x1f\x7f]")
_MASKED_LINK = re.compile(r"\[([^\[\]\n]+)\]\(\s*<?([^()\s<>]+)>?(?:\s+\"[^\"]*\")?\s*\)")


@dataclass(frozen=True)
class Payload:
    """One Discord message: its content and embeds, each within Discord's limits."""

    content: str | None = None
    embeds: tuple[discord.Embed, ...] = ()


@dataclass(frozen=True)
class ScopeStatus:
    """What /status says about one collection and the channels that use it."""

    scope: Scope
    channel_ids: list[int]  # the channel or category ids mapped to it
    is_default: bool  # it also serves every unmapped channel
    index: IndexStatus
    last_reindex: ReindexRun | None


def neutralise_mentions(text: str) -> str:
    """Break `@everyone`, `@here` and `<@id>`/`<@&id>` with a zero-width space so none pings."""
    return _MENTION.sub("@" + _ZERO_WIDTH_SPACE, text)


def article_text(text: str) -> str:
    """Text from an article shown as written: its markdown escaped (no masked links, headings,
    spoilers or bold it did not mean) and its mentions neutralised."""
    return neutralise_mentions(discord.utils.escape_markdown(text))


def generated_text(text: str) -> str:
    """An LLM's answer keeps its formatting, but a masked link shows where it leads
    (`text (https://…)`), so a passage that talked the model into a link cannot hide it."""
    return neutralise_mentions(_MASKED_LINK.sub(r"\1 (\2)", text))


def notice_text(text: str) -> str:
    """A short notice (an error, a refusal) fit for one message: credentials that an error
    carried redacted, mentions neutralised, shortened to the content limit."""
    return shorten(neutralise_mentions(redact(text)), CONTENT_LIMIT)


def shorten(text: str, limit: int) -> str:
    """`text` cut to `limit` characters, ending with "…" when it was cut."""
    if len(text) <= limit:
        return text
    return text[: limit - 1].rstrip() + "…"


def split_answer_text(text: str, limit: int = CONTENT_LIMIT) -> list[str]:
    """Split an answer into message contents between cited sentences ("… [n]").

    A sentence longer than a whole message is wrapped, its `[n]` kept with its last piece.
    """
    contents: list[str] = []
    current = ""
    for unit, separator in _sentence_units(text.strip(), limit):
        joined = f"{current}{separator}{unit}" if current else unit
        if len(joined) <= limit:
            current = joined
        else:
            contents.append(current)
            current = unit
    if current:
        contents.append(current)
    return contents


def pack_embeds(embeds: Sequence[discord.Embed]) -> list[list[discord.Embed]]:
    """Group embeds, in order, into as few messages as the count and total-size limits allow."""
    batches: list[list[discord.Embed]] = [[]]
    size = 0
    for embed in embeds:
        batch = batches[-1]
        if batch and (len(batch) == EMBEDS_PER_MESSAGE or size + len(embed) > EMBEDS_TOTAL_LIMIT):
            batches.append([])
            size = 0
        batches[-1].append(embed)
        size += len(embed)
    return [batch for batch in batches if batch]


def citation_embed(citation: Citation, quote_limit: int) -> discord.Embed:
    """A source: `[n] title` (linked when it has a web URL), the quote and, when the question
    was asked in another language, its gloss; date and article."""
    gloss = (
        "\n↳ " + shorten(article_text(" ".join(citation.gloss.split())), GLOSS_CHARS)
        if citation.gloss
        else ""
    )
    embed = discord.Embed(
        title=shorten(f"[{citation.n}] {article_text(citation.title)}", EMBED_TITLE_LIMIT),
        description=_quoted(citation.quote, min(quote_limit, EMBED_DESCRIPTION_LIMIT - len(gloss)))
        + gloss,
        url=_web_url(citation.url),
        colour=EMBED_COLOUR,
    )
    embed.set_footer(text=_footer(citation.date, citation.article))
    return embed


def answer_payloads(answer: Answer) -> list[Payload]:
    """The answer text with its `[n]` markers (after any notice, in italics), then one embed
    per source with a short quote. A quoted answer reads as one: the sentence that answers,
    quoted, with its source's title and date, then the supporting sentences."""
    if answer.mode == "extractive":
        body = quoted_answer_text(answer)
    else:
        body = generated_text(answer.text)
    text = f"*{answer.notice}*\n{body}" if answer.notice else body
    contents = split_answer_text(neutralise_mentions(text)) or [EMPTY_ANSWER]
    embeds = [citation_embed(citation, QUOTE_PREVIEW_CHARS) for citation in answer.citations]
    return _with_embeds([Payload(content=content) for content in contents], pack_embeds(embeds))


def quoted_answer_text(answer: Answer) -> str:
    """`> first quote [1]` and `— title, date` under it, then the supporting quotes; the plain
    text when there is nothing quoted (an abstention)."""
    if answer.abstained or not answer.quotes or not answer.citations:
        return answer.text
    first, *support = answer.quotes
    lines = [f"> {_one_line(first)} [1]", f"— {_source_line(answer.citations[0])}"]
    if support:
        lines += ["", "Also:"]
        lines += [f"> {_one_line(quote)} [{_cited(answer, quote)}]" for quote in support]
    return "\n".join(lines)


def _one_line(text: str) -> str:
    """Article text for one markdown line (a quote, a title): its whitespace joined, escaped."""
    return article_text(" ".join(text.split()))


def _cited(answer: Answer, quote: str) -> int:
    """The number of the citation a quoted sentence comes from."""
    return next((c.n for c in answer.citations if quote in c.quote), answer.citations[0].n)


def _source_line(citation: Citation) -> str:
    """A source's title, and its date when known."""
    title = f"*{_one_line(citation.title)}*"
    return f"{title}, {neutralise_mentions(citation.date)}" if citation.date else title


def late_answer_heading(asker: str, question: str) -> str:
    """The line over an answer posted in the channel (its interaction expired): who asked
    what. `asker` is a user mention; the bot's messages never ping."""
    return f"-# Answer to {asker}: “{shorten(neutralise_mentions(question), QUESTION_CHARS)}”"


def with_heading(heading: str, payloads: Sequence[Payload]) -> list[Payload]:
    """A heading line over the first payload's content, or as a message of its own before
    it when there is no room."""
    first, *rest = payloads
    content = f"{heading}\n{first.content}" if first.content else heading
    if len(content) <= CONTENT_LIMIT:
        return [Payload(content=content, embeds=first.embeds), *rest]
    return [Payload(content=heading), *payloads]


def streaming_payload(text: str) -> Payload:
    """A generated answer while it is written: its text so far, marked as unfinished."""
    shown = shorten(generated_text(text.strip()), CONTENT_LIMIT - len(WRITING_MARK))
    return Payload(content=shown + WRITING_MARK)


def sources_payloads(citations: Sequence[Citation]) -> list[Payload]:
    """Every source with its whole quote (the Sources button), split across messages."""
    if not citations:
        return [Payload(content="This answer cites no sources.")]
    embeds = [citation_embed(citation, EMBED_DESCRIPTION_LIMIT) for citation in citations]
    return [Payload(embeds=tuple(batch)) for batch in pack_embeds(embeds)]


def search_payloads(
    query: str,
    chunks: Sequence[StoredChunk],
    similarities: Mapping[str, float] | None = None,
    passages: Mapping[str, str] | None = None,
) -> list[Payload]:
    """The best passages for a query, with their rank and similarity to it (/search): each
    chunk shown by its passage nearest the query (`passages`, by chunk id), else its text."""
    shown_query = neutralise_mentions(query)
    if not chunks:
        return [Payload(content=shorten(f"No passages found for “{shown_query}”.", CONTENT_LIMIT))]
    heading = shorten(
        f"Best passages for “{shown_query}”:\n-# {SIMILARITY_EXPLAINED}", CONTENT_LIMIT
    )
    embeds = []
    for rank, chunk in enumerate(chunks, start=1):
        embed = discord.Embed(
            title=shorten(f"{rank}. {article_text(chunk.title)}", EMBED_TITLE_LIMIT),
            description=shorten(
                article_text((passages or {}).get(chunk.chunk_id, chunk.text)),
                SEARCH_PASSAGE_CHARS,
            ),
            url=_web_url(chunk.url),
            colour=EMBED_COLOUR,
        )
        similarity = similarity_label((similarities or {}).get(chunk.chunk_id))
        embed.set_footer(text=_footer(similarity, chunk.date, chunk.article_id))
        embeds.append(embed)
    return _with_embeds([Payload(content=heading)], pack_embeds(embeds))


def thread_name(question: str) -> str:
    """A thread title from the question that opened it."""
    return shorten(" ".join(question.split()), THREAD_NAME_LIMIT)


def plan_text(scope: Scope, plan: IndexPlan) -> str:
    """What a reindex is about to change, with a few article names per kind of change."""
    lines = [
        f"Reindexing collection {_code(scope.collection)} from {_code(str(scope.articles))}:",
        _plan_line("added", [article.id for article in plan.added]),
        _plan_line("changed", [article.id for article in plan.updated]),
        _plan_line("removed", plan.removed),
        f"• {len(plan.unchanged)} unchanged",
    ]
    return shorten("\n".join(lines), CONTENT_LIMIT)


# A question or search turned away because too many are waiting already.
BUSY = (
    "Many questions are being answered right now, and yours would wait too long: "
    "please ask again in a minute."
)

# What an answer with no text at all (a model that wrote nothing) shows.
EMPTY_ANSWER = "No answer was written; try asking again, or in other words."

# The answer message when the answer will come in the channel (its interaction expires first).
STILL_WORKING = (
    "Still working on this question: the answer will be posted in this channel when it is ready."
)

# The progress message until the run has planned.
READING_ARTICLES = "Reading the articles to see what changed…"


def progress_text(progress: IndexProgress) -> str:
    """One line of reindex progress."""
    return (
        f"Indexing… {progress.articles_done}/{progress.articles_total} articles, "
        f"{progress.chunks_embedded} chunks embedded."
    )


def reindex_summary_text(scope: Scope, summary: RunSummary, failures: Sequence[LoadFailure]) -> str:
    """The outcome of a reindex, with the files that could not be read."""
    lines = [
        f"Reindex of {_code(scope.collection)} done in {summary.seconds} s: "
        f"{summary.added} added, {summary.updated} updated, {summary.removed} removed, "
        f"{summary.unchanged} unchanged, {summary.failed} failed; "
        f"{summary.chunks_embedded} chunks embedded, {summary.chunks_total} in the index."
    ]
    if failures:
        lines.append("Could not read:")
        lines += [
            f"• {_code(_relative(failure.path, scope.articles))}: "
            + neutralise_mentions(failure.reason)
            for failure in failures
        ]
    return shorten("\n".join(lines), CONTENT_LIMIT)


def status_embed(
    *, version: str, answer_mode: str, retrieval: str, scopes: list[ScopeStatus]
) -> discord.Embed:
    """/status: version, model (and why it stands in for the configured one, if it does),
    answer mode, then each collection with its channels."""
    embed = discord.Embed(title="Citebot status", colour=EMBED_COLOUR)
    embed.add_field(name="Version", value=shorten(version, EMBED_FIELD_VALUE_LIMIT))
    answers = f"{answer_mode}, {retrieval} retrieval"  # the mode names the configured model
    embed.add_field(
        name="Answers", value=shorten(neutralise_mentions(answers), EMBED_FIELD_VALUE_LIMIT)
    )
    index = scopes[0].index  # every collection is read by the one embedder
    embed.add_field(name="Embedding model", value=shorten(index.embedder, EMBED_FIELD_VALUE_LIMIT))
    if index.fallback:
        embed.add_field(name="Note", value=shorten(index.fallback, EMBED_FIELD_VALUE_LIMIT))
    for shown, scope in enumerate(scopes):
        name = shorten(f"Collection {scope.scope.collection}", EMBED_FIELD_NAME_LIMIT)
        value = shorten(_scope_status(scope), EMBED_FIELD_VALUE_LIMIT)
        room = EMBEDS_TOTAL_LIMIT - len(embed) - 100  # kept for the "more" field
        if len(embed.fields) == EMBED_FIELDS_LIMIT - 1 or len(name) + len(value) > room:
            embed.add_field(name="…", value=f"and {len(scopes) - shown} more collections")
            break
        embed.add_field(name=name, value=value, inline=False)
    return embed


def _with_embeds(payloads: list[Payload], batches: list[list[discord.Embed]]) -> list[Payload]:
    """Attach the first embed batch to the last text payload; the rest get messages of their own."""
    if not batches:
        return payloads
    if payloads:
        last = payloads[-1]
        payloads = [*payloads[:-1], Payload(content=last.content, embeds=tuple(batches[0]))]
        batches = batches[1:]
    return payloads + [Payload(embeds=tuple(batch)) for batch in batches]


def _sentence_units(text: str, limit: int) -> Iterator[tuple[str, str]]:
    """The cited sentences of an answer, each wrapped to `limit` if it is longer, with what
    joins each to the one before: a line break where the answer had one, else a space."""
    parts = _AFTER_CITATION.split(text)
    for unit, before in zip(parts[::2], ["", *parts[1::2]], strict=True):
        separator = "\n" * min(before.count("\n"), 2) or " "
        if len(unit) <= limit:
            yield unit, separator
            continue
        marker = _TRAILING_MARKER.search(unit)
        tail = marker.group() if marker else ""
        body = unit[: len(unit) - len(tail)]
        pieces = list(_wrap(body, limit - len(tail)))
        yield pieces[0] + (tail if len(pieces) == 1 else ""), separator
        yield from ((piece, " ") for piece in pieces[1:-1])
        if len(pieces) > 1:
            yield pieces[-1] + tail, " "


def _wrap(text: str, width: int) -> Iterator[str]:
    """Cut text into pieces of at most `width`, at a space when one is in the later half."""
    while len(text) > width:
        cut = text.rfind(" ", width // 2, width + 1)
        cut = cut if cut > 0 else width
        yield text[:cut].rstrip()
        text = text[cut:].lstrip()
    yield text


def _quoted(quote: str, limit: int) -> str:
    return "“" + shorten(article_text(quote.strip()), limit - 2) + "”"


def _footer(*parts: str | None) -> str:
    return shorten(neutralise_mentions(" · ".join(part for part in parts if part)), FOOTER_CHARS)


def _web_url(url: str | None) -> str | None:
    """The URL if Discord can link it: http or https, a host name with a dot (or an IP address),
    no spaces or control characters. Discord rejects a whole message over a malformed embed
    URL, so anything else (an intranet name, `http://`, a value broken over lines) is left out.
    """
    if not url or len(url) > URL_LIMIT or _NOT_IN_URL.search(url):
        return None
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        parts.port  # noqa: B018 - raises ValueError on a port that is not a number
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not _URL_HOST.fullmatch(host):
        return None
    return url


def _code(text: str) -> str:
    """Inline code, so file names are shown as typed (no markdown, no mentions)."""
    return "`" + neutralise_mentions(text.replace("`", "'")) + "`"


def _relative(path: Path, folder: Path) -> str:
    """A path as shown to users: relative to the articles folder when it is inside it."""
    return str(path.relative_to(folder)) if path.is_relative_to(folder) else str(path)


def _plan_line(kind: str, names: Sequence[str]) -> str:
    shown = ", ".join(_code(name) for name in names[:PLAN_NAMES_SHOWN])
    more = f" and {len(names) - PLAN_NAMES_SHOWN} more" if len(names) > PLAN_NAMES_SHOWN else ""
    return f"• {len(names)} {kind}" + (f": {shown}{more}" if names else "")


def _scope_status(status: ScopeStatus) -> str:
    channels = [f"<#{channel_id}>" for channel_id in status.channel_ids]
    if status.is_default:
        channels.append("every unmapped channel")
    index = status.index
    indexed = (
        f"{index.articles} articles, {index.chunks} chunks"
        if index.problem is None
        else neutralise_mentions(index.problem)
    )
    lines = [
        f"Channels: {', '.join(channels)}",
        f"Folder: {_code(str(status.scope.articles))}",
        indexed,
    ]
    run = status.last_reindex
    if run is None:
        lines.append("Last reindex from Discord: none")
    else:
        when = discord.utils.format_dt(datetime.fromisoformat(run.finished), "R")
        counts = run.summary
        lines.append(
            f"Last reindex {when}: {counts.added} added, {counts.updated} updated, "
            f"{counts.removed} removed, {counts.failed} failed"
        )
    return "\n".join(lines)
