"""The bot's memory in SQLite (`feedback.sqlite3` in the data directory).

It keeps what must outlive a restart: every posted answer (so a Sources button can rebuild its
passages and a thread knows its earlier questions), the 👍/👎 votes on them, and the outcome of
each reindex. Calls block: the bot runs them in a worker thread.
"""

from __future__ import annotations

import dataclasses
import json
import secrets
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from bot.answer.conversation import Turn
from bot.answer.extractive import Citation
from index.chroma import folder_fault
from index.indexer import RunSummary

FEEDBACK_FILE = "feedback.sqlite3"
Verdict = Literal["up", "down"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS answers (
    id TEXT PRIMARY KEY,
    question TEXT NOT NULL,
    query TEXT NOT NULL,
    answer TEXT NOT NULL,
    citations TEXT NOT NULL,
    collection TEXT NOT NULL,
    channel_id INTEGER,
    thread_id INTEGER,
    user_id INTEGER NOT NULL,
    created TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS answers_by_thread ON answers (thread_id, created);
CREATE TABLE IF NOT EXISTS votes (
    answer_id TEXT NOT NULL REFERENCES answers (id),
    user_id INTEGER NOT NULL,
    verdict TEXT NOT NULL CHECK (verdict IN ('up', 'down')),
    question TEXT NOT NULL,
    answer TEXT NOT NULL,
    chunk_ids TEXT NOT NULL,
    created TEXT NOT NULL,
    PRIMARY KEY (answer_id, user_id)
);
CREATE TABLE IF NOT EXISTS reindex_runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    collection TEXT NOT NULL,
    finished TEXT NOT NULL,
    summary TEXT NOT NULL,
    failures TEXT NOT NULL
);
"""


def new_answer_id() -> str:
    """A fresh answer id: 16 hex digits, short enough for a button's custom id."""
    return secrets.token_hex(8)


def now() -> str:
    """The current UTC time as stored: ISO 8601 to the second."""
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class PostedAnswer:
    """An answer as posted in Discord; `query` is what was retrieved (condensed in threads)."""

    id: str
    question: str
    query: str
    text: str
    citations: list[Citation]
    collection: str
    channel_id: int | None
    thread_id: int | None
    user_id: int
    created: str


@dataclass(frozen=True)
class ReindexRun:
    """The outcome of one reindex from Discord: the report's summary and the failed files."""

    collection: str
    finished: str
    summary: RunSummary
    failures: list[str]


@contextmanager
def _folder_faults(folder: Path) -> Iterator[None]:
    """A read-only, full or removed data directory as one user-facing line naming it."""
    try:
        yield
    except (sqlite3.Error, OSError) as error:
        problem = folder_fault(error, folder)
        if problem is None:
            raise
        raise problem from None


def _create_tables(connection: sqlite3.Connection) -> None:
    connection.execute("PRAGMA journal_mode=WAL")
    connection.executescript(_SCHEMA)


class FeedbackStore:
    """Posted answers, votes and reindex runs in one SQLite file."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def create(self) -> None:
        """Create the file and its tables if they do not exist yet (run once at start)."""
        with _folder_faults(self.path.parent):
            self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as connection:
            _create_tables(connection)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """A short-lived connection (one per call: calls come from different threads). A file
        removed meanwhile (a deleted data directory, built again) gets its tables again."""
        with _folder_faults(self.path.parent):
            removed = not self.path.exists()
            with closing(sqlite3.connect(self.path, timeout=10)) as connection:
                if removed:
                    _create_tables(connection)
                connection.row_factory = sqlite3.Row
                with connection:  # commits, or rolls back on error
                    yield connection

    def save_answer(self, answer: PostedAnswer) -> None:
        """Remember a posted answer."""
        citations = json.dumps(
            [dataclasses.asdict(citation) for citation in answer.citations], ensure_ascii=False
        )
        with self._connect() as connection:
            connection.execute(
                "INSERT INTO answers (id, question, query, answer, citations, collection, "
                "channel_id, thread_id, user_id, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    answer.id,
                    answer.question,
                    answer.query,
                    answer.text,
                    citations,
                    answer.collection,
                    answer.channel_id,
                    answer.thread_id,
                    answer.user_id,
                    answer.created,
                ),
            )

    def set_thread(self, answer_id: str, thread_id: int) -> None:
        """Attach the thread opened on an answer, which starts that thread's conversation."""
        with self._connect() as connection:
            connection.execute(
                "UPDATE answers SET thread_id = ? WHERE id = ?", (thread_id, answer_id)
            )

    def answer(self, answer_id: str) -> PostedAnswer | None:
        """A posted answer by id, or None if it is not on record."""
        with self._connect() as connection:
            row = connection.execute("SELECT * FROM answers WHERE id = ?", (answer_id,)).fetchone()
        if row is None:
            return None
        return PostedAnswer(
            id=row["id"],
            question=row["question"],
            query=row["query"],
            text=row["answer"],
            citations=[Citation(**citation) for citation in json.loads(row["citations"])],
            collection=row["collection"],
            channel_id=row["channel_id"],
            thread_id=row["thread_id"],
            user_id=row["user_id"],
            created=row["created"],
        )

    def thread_turns(self, thread_id: int) -> list[Turn]:
        """The questions asked in a thread and their answers, oldest first."""
        with self._connect() as connection:
            rows = connection.execute(
                "SELECT question, answer FROM answers WHERE thread_id = ? ORDER BY created, rowid",
                (thread_id,),
            ).fetchall()
        return [Turn(question=row["question"], answer=row["answer"]) for row in rows]

    def record_vote(self, answer_id: str, user_id: int, verdict: Verdict) -> bool:
        """Store a user's verdict on an answer (a new click replaces theirs); False if unknown."""
        answer = self.answer(answer_id)
        if answer is None:
            return False
        chunk_ids = json.dumps([citation.chunk_id for citation in answer.citations])
        with self._connect() as connection:
            connection.execute(
                "INSERT INTO votes (answer_id, user_id, verdict, question, answer, chunk_ids, "
                "created) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (answer_id, user_id) "
                "DO UPDATE SET verdict = excluded.verdict, created = excluded.created",
                (answer_id, user_id, verdict, answer.question, answer.text, chunk_ids, now()),
            )
        return True

    def record_reindex(self, run: ReindexRun) -> None:
        """Remember a finished reindex for /status."""
        with self._connect() as connection:
            connection.execute(
                "INSERT INTO reindex_runs (collection, finished, summary, failures) "
                "VALUES (?, ?, ?, ?)",
                (
                    run.collection,
                    run.finished,
                    json.dumps(dataclasses.asdict(run.summary)),
                    json.dumps(run.failures),
                ),
            )

    def last_reindex(self, collection: str) -> ReindexRun | None:
        """The latest reindex of a collection from Discord, or None."""
        with self._connect() as connection:
            row = connection.execute(
                "SELECT * FROM reindex_runs WHERE collection = ? ORDER BY id DESC LIMIT 1",
                (collection,),
            ).fetchone()
        if row is None:
            return None
        return ReindexRun(
            collection=row["collection"],
            finished=row["finished"],
            summary=_run_summary(json.loads(row["summary"])),
            failures=json.loads(row["failures"]),
        )


def _run_summary(stored: dict[str, object]) -> RunSummary:
    """A stored summary's counts; ones an older Citebot did not store are 0."""
    known = {field.name for field in dataclasses.fields(RunSummary)}
    return RunSummary(**{name: value for name, value in stored.items() if name in known})  # type: ignore[arg-type]
