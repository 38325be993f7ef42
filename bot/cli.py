"""The `citebot` command: index articles, search, ask, evaluate and run the bot from a terminal.

The index, the embedding model and discord.py are imported by the commands that use them, so
`--help`, a mistyped option and `citebot health` answer at once.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from bot.errors import CitebotError, ConfigError
from index.redaction import install_log_redaction, redact

if TYPE_CHECKING:
    from bot.answer.engine import Engine
    from bot.answer.extractive import Answer
    from index.indexer import IndexPlan, IndexProgress, IndexReport
    from index.retrieval import Retrieval

log = logging.getLogger("citebot")

# The most passages `search -k` and `eval -k` retrieve: more is never useful to read, and slow.
MAX_PASSAGES = 50
# Commands that say which embedding model they use when it is not the configured one (the
# fallback to the bundled model): `index`, which builds with it, and the bot, which logs it at
# start and shows it in /status. Other commands use whatever the index was built with.
_REPORTS_MODEL_FALLBACK = frozenset({"index", "bot"})


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the process exit code."""
    args = _parser().parse_args(argv)
    _configure_logging(args.command, verbose=args.verbose)
    install_log_redaction()
    try:
        code = args.run(args)
        sys.stdout.flush()  # here, so a closed pipe is caught below, not at exit
        return code
    except BrokenPipeError:
        # The reader went away (`citebot search ... | head`): stop quietly, as other tools do,
        # with nothing left to flush into the closed pipe at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except CitebotError as error:
        print(f"citebot: {redact(str(error))}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("citebot: interrupted", file=sys.stderr)
        return 130


def _configure_logging(command: str, *, verbose: bool) -> None:
    """Warnings only (everything with -v); the model fallback only where it is news."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    quiet = not verbose and command not in _REPORTS_MODEL_FALLBACK
    logging.getLogger("index.embedding").setLevel(logging.ERROR if quiet else logging.NOTSET)


def _engine() -> Engine:
    """The engine as configured (settings from the environment and `.env`)."""
    from bot.answer.engine import Engine

    return Engine.configured()


def _count(maximum: int | None = None) -> Callable[[str], int]:
    """An argparse type: a whole number from 1 (to `maximum`, if given)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if maximum is not None and not 1 <= value <= maximum:
            raise argparse.ArgumentTypeError(f"must be from 1 to {maximum}, not {value}")
        if value < 1:
            raise argparse.ArgumentTypeError(f"must be 1 or more, not {value}")
        return value

    parse.__name__ = "count"  # argparse names the type in its messages
    return parse


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="citebot", description="Answer questions over your articles, with citations."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log what happens")
    commands = parser.add_subparsers(required=True, metavar="COMMAND", dest="command")

    index = commands.add_parser("index", help="index (or re-index) folders of articles")
    index.add_argument(
        "paths", nargs="*", type=Path, help="folders or files (default: CITEBOT_ARTICLES_DIR)"
    )
    index.add_argument("--rebuild", action="store_true", help="drop the index and start over")
    index.set_defaults(run=_index)

    search = commands.add_parser("search", help="show the passages that best match a query")
    search.add_argument("query")
    search.add_argument(
        "-k",
        type=_count(MAX_PASSAGES),
        help=f"how many passages, 1-{MAX_PASSAGES} (default CITEBOT_TOP_K)",
    )
    search.add_argument("--json", action="store_true", help="print JSON")
    search.set_defaults(run=_search)

    ask = commands.add_parser("ask", help="answer a question with cited sources")
    ask.add_argument("question")
    ask.add_argument("--json", action="store_true", help="print JSON")
    ask.set_defaults(run=_ask)

    evaluate = commands.add_parser(
        "eval", help="measure retrieval and answers on an evaluation set"
    )
    evaluate.add_argument("set_dir", type=Path, help="a folder with articles/ and questions.jsonl")
    evaluate.add_argument(
        "-k",
        type=_count(MAX_PASSAGES),
        default=10,
        help=f"how many passages to retrieve, 1-{MAX_PASSAGES} (default 10)",
    )
    evaluate.add_argument(
        "--extra-articles",
        type=Path,
        action="append",
        default=[],
        metavar="DIR",
        help="distractor articles indexed with the set (repeatable)",
    )
    evaluate.add_argument("--limit", type=_count(), metavar="N", help="only the first N questions")
    evaluate.add_argument(
        "--no-answers", action="store_true", help="measure retrieval only (much faster)"
    )
    evaluate.add_argument("--json", action="store_true", help="print JSON")
    evaluate.add_argument(
        "--details", type=Path, metavar="FILE", help="write one JSON line per question to FILE"
    )
    evaluate.set_defaults(run=_evaluate)

    status = commands.add_parser(
        "status", help="what the index holds and how questions are answered (as /status)"
    )
    status.set_defaults(run=_status)

    discord_bot = commands.add_parser("bot", help="run the Discord bot (needs DISCORD_TOKEN)")
    discord_bot.add_argument(
        "--sync", action="store_true", help="register the slash commands with Discord at start"
    )
    discord_bot.add_argument(
        "--guild",
        type=int,
        metavar="ID",
        help="with --sync: register them in this server only (immediate; for testing)",
    )
    discord_bot.set_defaults(run=_bot)

    health = commands.add_parser(
        "health", help="exit 0 if the bot is running and connected to Discord (its heartbeat)"
    )
    health.set_defaults(run=_health)
    return parser


def _index(args: argparse.Namespace) -> int:
    engine = _engine()
    paths = args.paths or [engine.settings.articles_dir]
    missing = [str(path) for path in paths if not path.exists()]
    if missing and not args.paths:
        raise ConfigError(
            f"no articles folder {missing[0]} (CITEBOT_ARTICLES_DIR, the folder `citebot index` "
            "reads when given none): create it, set CITEBOT_ARTICLES_DIR, or run "
            "`citebot index PATH`"
        )
    if missing:
        raise ConfigError(f"no such file or folder: {', '.join(missing)}")
    progress = _ProgressBar()
    report = engine.corpus().sync(
        paths, rebuild=args.rebuild, on_plan=progress.start, on_progress=progress.update
    )
    progress.close()
    _print_report(report)
    return 0


def _search(args: argparse.Namespace) -> int:
    from bot.similarity import SIMILARITY_EXPLAINED, similarity_label

    engine = _engine()
    k = args.k or engine.settings.top_k
    retriever = engine.retriever()
    retrieval = retriever.retrieve(_question(engine, args.query), k)
    passages = retriever.matching_passages(retrieval)
    if args.json:
        print(json.dumps(_retrieval_json(retrieval, passages), ensure_ascii=False, indent=2))
        return 0
    if not retrieval.chunks:
        print("No passages found.")
        return 0
    print(f"Best first; {SIMILARITY_EXPLAINED}.")
    for rank, chunk in enumerate(retrieval.chunks, start=1):
        label = similarity_label(retrieval.similarities.get(chunk.chunk_id))
        dated = f"{chunk.title}, {chunk.date}" if chunk.date else chunk.title
        print(f"{rank}. [{label}] {dated} ({chunk.article_id}, chunk {chunk.ordinal})")
        print(f"   {_one_line(passages[chunk.chunk_id], 300)}")
    return 0


def _ask(args: argparse.Namespace) -> int:
    engine = _engine()
    answerer = engine.responder(engine.retriever())
    if args.json:
        print(json.dumps(answerer.answer(args.question).to_json(), ensure_ascii=False, indent=2))
        return 0
    stream = _StreamPrinter()
    answer = answerer.answer(args.question, stream.show)
    if stream.printed:
        print("\n\n--- checked answer ---")
    print(format_answer(answer))
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from bot.evaluation import evaluate_set, format_eval

    with contextlib.ExitStack() as stack:
        details = stack.enter_context(_open_details(args.details)) if args.details else None
        result = evaluate_set(
            _engine(),
            args.set_dir,
            k=args.k,
            extra_articles=args.extra_articles,
            limit=args.limit,
            answers=not args.no_answers,
            on_progress=_ProgressBar().update,
            details=details,
        )
    print(json.dumps(result, indent=2) if args.json else format_eval(result))
    return 0


def _open_details(path: Path) -> TextIO:
    """The `--details` file, opened for writing; a path that cannot be written is a user error."""
    try:
        return path.open("w", encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"cannot write --details {path}: {error.strerror}") from None


def _status(args: argparse.Namespace) -> int:
    """The configured collection's index, the embedder and the answer mode; exit 1 when the
    index cannot be read."""
    engine = _engine()
    status = engine.status()
    print(f"index: {engine.connection.where}")
    counts = (
        f"{status.articles} articles, {status.chunks} chunks, generation {status.generation}"
        if status.problem is None
        else status.problem
    )
    print(f"collection {status.collection}: {counts}")
    print(f"embedding model: {status.embedder}")
    if status.fallback:
        print(f"  ({status.fallback})")
    print(f"answers: {engine.answer_mode}, {engine.settings.retrieval} retrieval")
    return 0 if status.problem is None else 1


def _bot(args: argparse.Namespace) -> int:
    from bot.discord.bot import run_bot

    logging.getLogger("citebot").setLevel(logging.INFO)  # a service logs what it does
    return run_bot(_engine(), sync=args.sync, guild_id=args.guild)


def _health(args: argparse.Namespace) -> int:
    """The container health check: is the bot of this data directory beating?"""
    from bot.discord.heartbeat import MAX_AGE_SECONDS, heartbeat_age, heartbeat_path
    from bot.settings import load_settings

    path = heartbeat_path(load_settings().data_dir)
    age = heartbeat_age(path)
    if age is None:
        print(f"citebot: unhealthy: no heartbeat at {path} (the bot is not connected)")
        return 1
    if age > MAX_AGE_SECONDS:
        print(f"citebot: unhealthy: last heartbeat {age:.0f} s ago (the bot is not connected)")
        return 1
    print(f"healthy: last heartbeat {age:.0f} s ago")
    return 0


def format_answer(answer: Answer) -> str:
    """The answer (after any notice) and its numbered sources, as plain text for a terminal."""
    lines = [f"({answer.notice})", answer.text] if answer.notice else [answer.text]
    if answer.citations:
        lines += ["", "Sources:"]
    for citation in answer.citations:
        where = citation.url or _shown_path(citation.path)
        dated = f" ({citation.date})" if citation.date else ""
        lines.append(f"[{citation.n}] {citation.title}{dated} - {where}")
        lines.append(f"    \u201c{citation.quote}\u201d")
        if citation.gloss:
            lines.append(f"    = {citation.gloss}")
    return "\n".join(lines)


def _shown_path(path: str) -> str:
    """A file under the working directory relative to it (shorter, and the same on every
    clone); any other as it is."""
    try:
        return str(Path(path).relative_to(Path.cwd()))
    except ValueError:
        return path


def _question(engine: Engine, text: str) -> str:
    from bot.answer.extractive import clean_question

    return clean_question(text, engine.settings.max_question_chars)


def _retrieval_json(retrieval: Retrieval, passages: dict[str, str]) -> dict[str, object]:
    """`search --json`: each result with its chunk's text and the passage nearest the query."""
    return {
        "query": retrieval.query,
        "results": [
            {
                "rank": rank,
                "chunk_id": chunk.chunk_id,
                "article": chunk.article_id,
                "title": chunk.title,
                "date": chunk.date,
                "score": round(chunk.score, 4),
                "similarity": _rounded(retrieval.similarities.get(chunk.chunk_id)),
                "passage": passages[chunk.chunk_id],
                "text": chunk.text,
            }
            for rank, chunk in enumerate(retrieval.chunks, start=1)
        ],
        "timings_ms": {
            "embed": round(retrieval.embed_ms, 1),
            "search": round(retrieval.search_ms, 1),
        },
    }


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def _print_report(report: IndexReport) -> None:
    for failure in report.failures:
        print(f"skipped {failure.path}: {failure.reason}", file=sys.stderr)
    for article_id in report.kept:
        print(f"kept {article_id}, unreadable now: its last good version stays", file=sys.stderr)
    for note in report.notes:
        print(f"note {note.path}: {note.message}", file=sys.stderr)
    summary = report.summary()
    print(
        f"articles: {summary.added} added, {summary.updated} updated, "
        f"{summary.removed} removed, {summary.unchanged} unchanged, {summary.failed} failed"
    )
    print(
        f"chunks: {summary.chunks_embedded} embedded, {summary.chunks_total} in the index; "
        f"{summary.seconds} s"
    )


def _one_line(text: str, limit: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "\u2026"


class _StreamPrinter:
    """Prints a generated answer to stdout as it is written (each text extends the last)."""

    def __init__(self) -> None:
        self.printed = ""

    def show(self, text: str) -> None:
        if text.startswith(self.printed):
            sys.stdout.write(text[len(self.printed) :])
            sys.stdout.flush()
            self.printed = text


class _ProgressBar:
    """A tqdm bar on a terminal; silent when output is piped or logged."""

    def __init__(self) -> None:
        self._bar = None

    def start(self, plan: IndexPlan) -> None:
        if plan.to_embed and sys.stderr.isatty():
            from tqdm import tqdm

            self._bar = tqdm(total=len(plan.to_embed), unit="article", file=sys.stderr)

    def update(self, progress: IndexProgress) -> None:
        if self._bar is not None:
            self._bar.n = progress.articles_done
            self._bar.set_postfix(chunks=progress.chunks_embedded, refresh=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
