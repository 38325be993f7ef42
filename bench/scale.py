"""Cost at scale: 10k and 100k chunks, embedded Chroma and a Chroma server side by side.

    python bench/scale.py --chunks 10000 100000 --modes embedded server

Corpora are built from the shared evaluation articles (../shared/eval/*/articles, or
`--eval-dir`): synthetic articles of paragraphs recombined from many real ones, each with its
own id and title, so no two are duplicates. Embedding 100k chunks with the bundled model would
take days on this machine, so only a sample of real passages (`--real-passages`) is embedded
for real, once (cached); every passage of the synthetic corpus gets the real vector of the same
passage when the sample has it, else one of the sample's real vectors, in both cases slightly
perturbed. Query embedding, indexing (chunking, writes, BM25), every search and every answer
are the product's own and real. The bench says so in its output.

Per corpus size and mode it prints: vectors stored, disk size, build time and insert rate,
no-op reindex seconds (zero embeddings, checked), retrieval and full extractive `ask` p50/p95
(medians of `--runs` passes; wall and CPU time, since the machine may be shared), peak RSS of
the reader process and of the Chroma server, and the time from starting a reader process to
its first answer, and how much longer its local copy of the passages took to fill (the timed
passes read passages from it). Targets are printed beside them. Server mode runs
`chroma run --path <dir> --host 127.0.0.1 --port <free>` and stops it; `--server-store share`
serves the directory embedded mode built instead of indexing a second store through it.
`--busy` adds, per mode, the reader's timings again with another process keeping a core busy
(one spinning process: a `/reindex` or any other job), printed as its own column.

Indexing is the product's incremental one, so with `--work-dir` a run that was stopped resumes
where it stopped (the corpus is regenerated identically); a store already complete is reused
and its build shown as "reused".
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.answer.engine import Engine
from bot.answer.extractive import Quoter, clean_question
from bot.answer.pipeline import AnswerPipeline
from bot.evaluation import load_questions
from bot.settings import Settings
from index.articles import Article, load_articles
from index.chunking import Chunker
from index.corpus import Corpus
from index.embedding import Embedder

ROOT = Path(__file__).resolve().parent.parent
COLLECTION = "scale"


# --------------------------------------------------------------------------------------------
# Glue to the product's API: the only place that knows how a store is opened, how passages are
# embedded and how many vectors a store holds. Adapt here when index/ or bot/answer/engine.py
# change.
# --------------------------------------------------------------------------------------------


def product_settings(data_dir: Path, chroma_url: str | None) -> Settings:
    """The product's settings for a bench store: its data dir, and its Chroma server if any."""
    return Settings(data_dir=data_dir, collection=COLLECTION, chroma_url=chroma_url)


def product_engine(data_dir: Path, chroma_url: str | None, embedder: Embedder | None) -> Engine:
    """The product's engine over a bench store; `embedder` replaces the configured one."""
    return Engine(product_settings(data_dir, chroma_url), embedder)


def answerer_never_abstaining(engine: Engine, retriever: Any) -> AnswerPipeline:
    """The configured quoting pipeline without abstention: every answer quotes sentences."""
    settings = engine.settings
    return AnswerPipeline(
        retriever,
        Quoter(retriever),
        top_k=settings.top_k,
        abstention=None,
        max_question_chars=settings.max_question_chars,
        condenser=engine.condenser(),
    )


def wait_for_passage_copy(retriever: Any) -> float:
    """Seconds until the reader's local copy of the passages is filled (a new host fills it in
    the background while answering from Chroma); timings after it read passages locally."""
    replica = retriever._store.replica
    started = time.perf_counter()
    if replica is not None:
        replica.wait()
    return time.perf_counter() - started


def stored_vectors(engine: Engine) -> dict[str, int]:
    """Chunk records (each with the one vector searched) and passage records (each a chunk's
    passage vectors, packed) of the live index the engine reads."""
    store = engine.corpus().store()
    store.open_for_reading()
    return {"chunks": store.count(), "passage_records": store.passage_count()}


class RecordingEmbedder:
    """The real embedder, remembering every document text it embedded and its vector."""

    def __init__(self, real: Embedder) -> None:
        self._real = real
        self.texts: list[str] = []
        self.vectors: list[np.ndarray] = []

    identity = property(lambda self: self._real.identity)
    dimension = property(lambda self: self._real.dimension)
    max_tokens = property(lambda self: self._real.max_tokens)

    def count_tokens(self, text: str) -> int:
        return self._real.count_tokens(text)

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        vectors = self._real.embed_documents(texts)
        self.texts.extend(texts)
        self.vectors.extend(vectors)
        return vectors

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._real.embed_queries(texts)


class ReusingEmbedder(RecordingEmbedder):
    """Documents get a real sample vector, slightly perturbed, instead of a model pass: the
    vector of the same text when the sample has it (the title line aside), else a sample
    vector chosen by the text's hash. Queries are embedded for real. Counts its calls, so a
    no-op reindex can show it embedded nothing."""

    def __init__(self, real: Embedder, texts: Sequence[str], vectors: np.ndarray, noise: float):
        super().__init__(real)
        self._vectors = np.asarray(vectors, dtype=np.float32)
        self._exact = {text: n for n, text in enumerate(texts)}
        self._body = {_body(text): n for n, text in enumerate(texts)}
        self._noise = noise
        self._rng = np.random.default_rng(0)
        self.calls = 0
        self.documents = 0
        self.reused_exact = 0

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        self.calls += 1
        self.documents += len(texts)
        rows = []
        for text in texts:
            row = self._exact.get(text, self._body.get(_body(text)))
            if row is None:
                row = zlib.crc32(text.encode()) % len(self._vectors)
            else:
                self.reused_exact += 1
            rows.append(row)
        chosen = self._vectors[rows]
        chosen = chosen + self._rng.normal(0, self._noise, chosen.shape).astype(np.float32)
        return chosen / np.linalg.norm(chosen, axis=1, keepdims=True)


def _body(text: str) -> str:
    """A passage without the title line the indexer may put before it."""
    return text.split("\n", 1)[-1]


# ---------------------------------------------------------------------------------- sample --


def eval_sets(eval_dir: Path) -> list[Path]:
    sets = sorted(path.parent for path in eval_dir.glob("*/articles") if path.is_dir())
    if not sets:
        sys.exit(f"no evaluation sets under {eval_dir} (expected <set>/articles)")
    return sets


def real_sample(
    engine: Engine, sets: Sequence[Path], passages: int, cache_dir: Path
) -> tuple[list[str], np.ndarray, float]:
    """Texts and real vectors of at least `passages` passages of real articles (taken in turn
    from each set), embedded by the product's own indexing; cached. Also the CPU seconds the
    embedding took (0 from the cache)."""
    files = _interleaved([sorted((s / "articles").iterdir()) for s in sets])
    settings = engine.settings
    key = json.dumps(
        [engine.embedder.identity, passages, settings.chunk_tokens, settings.chunk_overlap_tokens]
        + [str(path) for path in files[:200]]
    )
    cached = cache_dir / f"sample-{hashlib.sha256(key.encode()).hexdigest()[:16]}.npz"
    if cached.exists():
        data = np.load(cached, allow_pickle=False)
        return [str(text) for text in data["texts"]], data["vectors"], 0.0
    recorder = RecordingEmbedder(engine.embedder)
    started = time.process_time()
    with tempfile.TemporaryDirectory() as scratch:
        staging = Path(scratch, "articles")
        staging.mkdir()
        corpus = Corpus(
            Engine(product_settings(Path(scratch, "data"), None)).connection,
            COLLECTION,
            recorder,
            settings.chunking,
        )
        for path in files:
            shutil.copy(path, staging / path.name)
            corpus.sync([staging])
            print(f"  sample: {len(recorder.texts)} passages embedded", flush=True)
            if len(recorder.texts) >= passages:
                break
    seconds = time.process_time() - started
    cache_dir.mkdir(parents=True, exist_ok=True)
    np.savez(cached, texts=np.array(recorder.texts), vectors=np.array(recorder.vectors))
    return recorder.texts, np.array(recorder.vectors), seconds


def _interleaved(lists: Sequence[Sequence[Path]]) -> list[Path]:
    """One item of each list in turn, shortest lists first: every set is in the sample."""
    ordered = sorted(lists, key=len)
    longest = max(len(items) for items in ordered)
    return [items[n] for n in range(longest) for items in ordered if n < len(items)]


# ---------------------------------------------------------------------------------- corpus --


def write_corpus(
    articles: Sequence[Article],
    chunker: Chunker,
    chunks: int,
    chunks_per_article: int,
    folder: Path,
) -> int:
    """Write synthetic articles of about `chunks` chunks in all under `folder`; return how many.

    Each is a new mix of paragraphs of real articles, led by one article's paragraphs, with a
    title and id of its own. Their length is calibrated with the product's chunker.
    """
    paragraphs = [p for article in articles for p in _paragraphs(article.text)]
    rng = random.Random(0)
    sample = [_mix(articles, paragraphs, rng, n, 6000) for n in range(20)]
    sample_chunks = sum(len(chunker.split(f"c{n}", text, t)) for n, (t, text) in enumerate(sample))
    chars_per_chunk = sum(len(text) for _, text in sample) / sample_chunks
    target_chars = int(chars_per_chunk * chunks_per_article)
    count = max(1, round(chunks / chunks_per_article))
    if folder.is_dir() and len(list(folder.glob("*/*.md"))) == count:
        return count  # written by an earlier run with the same arguments (same seed)
    folder.mkdir(parents=True, exist_ok=True)
    for n in range(count):
        title, text = _mix(articles, paragraphs, rng, n, target_chars)
        shard = folder / f"{n // 1000:03d}"
        shard.mkdir(exist_ok=True)
        (shard / f"{n:06d}.md").write_text(
            f"---\ntitle: {json.dumps(title, ensure_ascii=False)}\nsource: scale bench\n---\n\n"
            f"{text}\n",
            encoding="utf-8",
        )
    return count


def _paragraphs(text: str) -> list[str]:
    return [p.strip() for p in re.split(r"\n\s*\n", text) if len(p.strip()) > 20]


def _mix(
    articles: Sequence[Article], paragraphs: Sequence[str], rng: random.Random, n: int, chars: int
) -> tuple[str, str]:
    """Article `n`: its lead article's paragraphs (rotated), then others', to `chars` chars."""
    lead = articles[n % len(articles)]
    own = _paragraphs(lead.text) or [lead.text]
    shift = (n // len(articles)) % len(own)
    chosen = own[shift:] + own[:shift]
    while sum(len(p) for p in chosen) < chars:
        chosen.append(rng.choice(paragraphs))
    text, total = [], 0
    for paragraph in chosen:
        if total >= chars:
            break
        text.append(paragraph)
        total += len(paragraph)
    return f"{lead.title} ({n + 1})", "\n\n".join(text)


# ---------------------------------------------------------------------------------- server --


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class ChromaServer:
    """`chroma run` on 127.0.0.1 with a free port, over a given directory."""

    def __init__(self, path: Path, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        chroma = Path(sys.executable).with_name("chroma")
        command = [str(chroma), "run", "--path", str(path), "--host", "127.0.0.1"]
        self._log = log.open("ab")
        self._process = subprocess.Popen(
            [*command, "--port", str(self.port)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._wait_ready()

    def _wait_ready(self, timeout: float = 300.0) -> None:
        import urllib.request

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"chroma run exited with {self._process.returncode}")
            try:
                with urllib.request.urlopen(f"{self.url}/api/v2/heartbeat", timeout=2):
                    return
            except OSError:
                time.sleep(0.5)
        raise RuntimeError("chroma run did not answer its heartbeat")

    @property
    def pid(self) -> int:
        return self._process.pid

    def peak_rss_mb(self) -> float:
        """Peak resident memory of the server process and its children so far."""
        return sum(_peak_rss_mb(pid) for pid in _process_tree(self._process.pid))

    def stop(self) -> None:
        if self._process.poll() is None:
            os.killpg(self._process.pid, signal.SIGTERM)
            try:
                self._process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self._process.pid, signal.SIGKILL)
                self._process.wait()
        self._log.close()


def _process_tree(pid: int) -> list[int]:
    pids = [pid]
    for child in Path(f"/proc/{pid}/task").glob("*/children"):
        for text in child.read_text().split():
            pids += _process_tree(int(text))
    return pids


def _peak_rss_mb(pid: int) -> float:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    match = re.search(r"VmHWM:\s+(\d+) kB", status)
    return int(match.group(1)) / 1024 if match else 0.0


# --------------------------------------------------------------------------------- workers --
# Each phase runs in a fresh process, so its peak RSS and its start-up are its own.


def worker_build(job: dict[str, Any]) -> dict[str, Any]:
    """Index the synthetic corpus (reused vectors), then time no-op reindexes."""
    data = np.load(job["sample"], allow_pickle=False)
    real = Engine.configured().embedder
    embedder = ReusingEmbedder(real, [str(t) for t in data["texts"]], data["vectors"], job["noise"])
    engine = product_engine(Path(job["data_dir"]), job["url"], embedder)
    corpus = engine.corpus()
    roots = [Path(job["articles"])]
    result: dict[str, Any] = {}
    if job["build"]:
        started, started_cpu = time.perf_counter(), time.process_time()
        report = corpus.sync(roots, on_progress=_log_progress)
        result["build_s"] = time.perf_counter() - started
        result["build_cpu_s"] = time.process_time() - started_cpu
        result["build_documents"] = embedder.documents
        result["reused_exact"] = embedder.reused_exact
        result["articles"] = len(report.added)
        result["failures"] = len(report.failures)
        if not (report.added or report.updated):  # built by an earlier run (`--work-dir`)
            result["build_s"] = result["build_cpu_s"] = None
    return _time_noop(engine, roots, embedder, job["noop_runs"], result)


def _time_noop(
    engine: Engine,
    roots: list[Path],
    embedder: ReusingEmbedder,
    runs: int,
    result: dict[str, Any],
) -> dict[str, Any]:
    """Time `runs` reindexes of unchanged articles; record what they embedded (must be 0)."""
    corpus = engine.corpus()
    noop: list[float] = []
    noop_cpu: list[float] = []
    embedded = []
    for _ in range(runs):
        embedder.calls = 0
        started, started_cpu = time.perf_counter(), time.process_time()
        report = corpus.sync(roots)
        noop.append(time.perf_counter() - started)
        noop_cpu.append(time.process_time() - started_cpu)
        embedded.append(report.chunks_embedded + embedder.calls)
        result["articles"] = len(report.unchanged)
        result["chunks"] = report.chunks_total
        result["not_unchanged"] = len(report.added) + len(report.updated) + len(report.removed)
    result["noop_s"] = statistics.median(noop) if noop else None
    result["noop_cpu_s"] = statistics.median(noop_cpu) if noop else None
    result["noop_embeddings"] = max(embedded, default=0)
    result["vectors"] = stored_vectors(engine)
    result["peak_rss_mb"] = _peak_rss_mb(os.getpid())
    return result


def _log_progress(progress: Any) -> None:
    """Every 100 articles, a line in the bench log (a large build takes hours here)."""
    if progress.articles_done % 100 == 0 or progress.articles_done == progress.articles_total:
        print(
            f"{time.strftime('%H:%M:%S')} indexed {progress.articles_done:,} of "
            f"{progress.articles_total:,} articles, {progress.chunks_embedded:,} chunks",
            file=sys.stderr,
            flush=True,
        )


def worker_read(job: dict[str, Any]) -> dict[str, Any]:
    """Start as a reader would, answer once (time to first answer), then time retrieval and
    full extractive answers, in wall and CPU time (the machine may be busy with other work)."""
    engine = product_engine(Path(job["data_dir"]), job["url"], None)
    retriever = engine.retriever()
    answerer = engine.answerer(retriever)
    # Every timed pass asks questions of its own, none asked before: caches (the store keeps
    # recently read passages) help only as much as a stream of new questions lets them.
    first, *questions = job["questions"]
    answerer.warm_up()  # as the bot does at start
    answerer.answer(first)
    per_pass = job["queries"]
    first_answer_s = time.time() - job["started"]
    top_k = engine.settings.top_k
    server = job.get("server_pid")
    result: dict[str, Any] = {"first_answer_s": first_answer_s}
    result["passage_copy_wait_s"] = wait_for_passage_copy(retriever)
    abstained: list[bool] = []

    def retrieve(question: str) -> None:
        retriever.retrieve(clean_question(question, 10_000), top_k)

    def ask(question: str) -> None:
        abstained.append(answerer.answer(question).abstained)

    def ask_full(question: str) -> None:
        never_abstaining.answer(question)

    never_abstaining = answerer_never_abstaining(engine, retriever)
    timed = (("retrieval", retrieve), ("ask_full", ask_full), ("ask", ask))
    passes = iter(range(0, len(questions), per_pass))
    for name, call in timed:
        wall_runs, cpu_runs, server_cpu = [], [], []
        for _ in range(job["runs"]):
            abstained.clear()
            wall, cpu = [], []
            server_before = _cpu_seconds(server) if server else 0.0
            start = next(passes)
            for question in questions[start : start + per_pass]:
                started, started_cpu = time.perf_counter(), time.process_time()
                call(question)
                wall.append((time.perf_counter() - started) * 1000)
                cpu.append((time.process_time() - started_cpu) * 1000)
            if server:
                server_cpu.append((_cpu_seconds(server) - server_before) * 1000 / per_pass)
            wall_runs.append(_percentiles(wall))
            cpu_runs.append(_percentiles(cpu))
        result[f"{name}_ms"] = _median_percentiles(wall_runs)
        result[f"{name}_cpu_ms"] = _median_percentiles(cpu_runs)
        result[f"{name}_server_cpu_ms"] = statistics.median(server_cpu) if server else None
    result["abstained"] = sum(abstained) / per_pass
    result["peak_rss_mb"] = _peak_rss_mb(os.getpid())
    result["embedder"] = engine.embedder.identity
    return result


def _cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds a process and its children (threads included) have used."""
    total = 0.0
    for each in _process_tree(pid):
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{each}/stat").read_text().rpartition(")")[2].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def _percentiles(values: list[float]) -> tuple[float, float]:
    return statistics.median(values), statistics.quantiles(values, n=20, method="inclusive")[18]


def _median_percentiles(runs: list[tuple[float, float]]) -> tuple[float, float]:
    return statistics.median(p50 for p50, _ in runs), statistics.median(p95 for _, p95 in runs)


def run_worker(kind: str, job: dict[str, Any], log: Path) -> dict[str, Any]:
    """Run a worker phase in a fresh Python process; its result is its last stdout line."""
    job = {**job, "started": time.time()}
    with log.open("ab") as errors:
        done = subprocess.run(
            [sys.executable, __file__, "--worker", kind, json.dumps(job)],
            stdout=subprocess.PIPE,
            stderr=errors,
            cwd=ROOT,
            check=False,
        )
    if done.returncode != 0:
        raise RuntimeError(f"{kind} worker failed ({done.returncode}); see {log}")
    return json.loads(done.stdout.decode().strip().splitlines()[-1])


# ------------------------------------------------------------------------------- reporting --


@dataclass
class Column:
    """The figures of one corpus size in one mode."""

    chunks_asked: int
    mode: str
    build: dict[str, Any]
    noop: dict[str, Any]
    read: dict[str, Any]
    server_rss_mb: float | None
    disk_mb: float


def disk_mb(*paths: Path) -> float:
    total = 0
    for path in paths:
        for folder, _, names in os.walk(path):
            for name in names:
                with contextlib.suppress(OSError):
                    total += os.path.getsize(os.path.join(folder, name))
    return total / 1024 / 1024


def _number(value: float | None, decimals: int = 0) -> str:
    return "-" if value is None else f"{value:,.{decimals}f}"


def print_table(columns: list[Column]) -> None:
    def row(label: str, cells: list[str], target: str = "") -> None:
        print(f"{label:34}" + "".join(f"{cell:>20}" for cell in cells) + f"   {target}")

    row("", [f"{c.chunks_asked:,} {c.mode}" for c in columns], "target")
    row("articles", [f"{c.noop['articles']:,}" for c in columns])
    row("chunks stored", [f"{c.noop['chunks']:,}" for c in columns])
    row("vectors searched (one per chunk)", [f"{c.noop['vectors']['chunks']:,}" for c in columns])
    # Every passage vector stored was embedded once by the build (reused stores: not known).
    passages = [c.build.get("build_documents") if c.build else None for c in columns]
    row("passage vectors stored (packed)", [_number(p) for p in passages])
    row(
        "passage vectors per chunk",
        [
            f"{p / c.noop['chunks']:.1f}" if p else "-"
            for p, c in zip(passages, columns, strict=True)
        ],
    )
    row(
        "passages with their own real vector",
        [f"{c.build['reused_exact']:,}" if c.build else "-" for c in columns],
    )
    row("disk (MB)", [f"{c.disk_mb:,.0f}" for c in columns])
    row(
        "build (s, reused vectors)",
        [f"{c.build['build_s']:,.0f}" if c.build else "reused" for c in columns],
    )
    row(
        "build CPU (s, indexer process)",
        [_number(c.build.get("build_cpu_s")) if c.build else "reused" for c in columns],
    )
    row(
        "insert rate (chunks/s)",
        [
            f"{c.build['vectors']['chunks'] / c.build['build_s']:,.0f}" if c.build else "-"
            for c in columns
        ],
    )
    row(
        "no-op reindex (s)",
        [
            f"{c.noop['noop_s']:.2f} ({c.noop['articles']:,} art.)" if "noop_s" in c.noop else "-"
            for c in columns
        ],
        "<= 2 s (1,000 articles), <= 15 s (10,000)",
    )
    row("no-op reindex CPU (s, indexer)", [_number(c.noop.get("noop_cpu_s"), 2) for c in columns])
    row("no-op embeddings", [str(c.noop.get("noop_embeddings", "-")) for c in columns], "0")
    row(
        "retrieval p50 / p95 (ms)",
        [f"{c.read['retrieval_ms'][0]:.0f} / {c.read['retrieval_ms'][1]:.0f}" for c in columns],
        "p95 <= 50 embedded, <= 80 server (100k)",
    )
    row(
        "extractive ask p50 / p95 (ms)",
        [f"{c.read['ask_ms'][0]:.0f} / {c.read['ask_ms'][1]:.0f}" for c in columns],
        "p95 <= 300",
    )
    row(
        "ask, never abstaining p50 / p95",
        [f"{c.read['ask_full_ms'][0]:.0f} / {c.read['ask_full_ms'][1]:.0f}" for c in columns],
        "p95 <= 300",
    )
    for name, label in (("retrieval", "retrieval"), ("ask", "ask")):
        cpu = [c.read[f"{name}_cpu_ms"] for c in columns]
        row(f"{label} CPU p50 / p95 (ms, reader)", [f"{a:.0f} / {b:.0f}" for a, b in cpu])
        row(
            f"{label} CPU mean (ms, Chroma server)",
            [_number(c.read.get(name + "_server_cpu_ms")) for c in columns],
        )
    row("answers abstained", [f"{c.read['abstained']:.0%}" for c in columns])
    row(
        "reader peak RSS (MB)",
        [f"{c.read['peak_rss_mb']:,.0f}" for c in columns],
        "<= 1,536 server mode (100k)",
    )
    row(
        "Chroma server peak RSS (MB)",
        [f"{c.server_rss_mb:,.0f}" if c.server_rss_mb else "-" for c in columns],
    )
    row("indexer peak RSS (MB)", [_number(c.noop.get("peak_rss_mb")) for c in columns])
    row("first answer after start (s)", [f"{c.read['first_answer_s']:.1f}" for c in columns])
    row(
        "passage copy filled after (s)",
        [f"{c.read['passage_copy_wait_s']:.1f}" for c in columns],
        "0 on a host that has it",
    )


# ------------------------------------------------------------------------------------ main --


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chunks", type=int, nargs="+", default=[10_000])
    parser.add_argument(
        "--modes", nargs="+", choices=["embedded", "server"], default=["embedded", "server"]
    )
    parser.add_argument("--eval-dir", type=Path, default=_default_eval_dir())
    parser.add_argument("--chunks-per-article", type=int, default=10)
    parser.add_argument("--real-passages", type=int, default=1500)
    parser.add_argument("--noise", type=float, default=0.01, help="per-dimension sigma")
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--server-store",
        choices=["build", "share"],
        default="build",
        help="server mode indexes its own store through the server (build), or serves the "
        "directory embedded mode built (share: half the indexing time)",
    )
    parser.add_argument(
        "--busy", action="store_true", help="also time the reader with another core kept busy"
    )
    parser.add_argument("--work-dir", type=Path, help="kept afterwards when given")
    parser.add_argument(
        "--cache-dir", type=Path, default=Path(tempfile.gettempdir()) / "citebot-scale-cache"
    )
    args = parser.parse_args()

    sets = eval_sets(args.eval_dir)
    engine = Engine.configured()
    print(f"embedder {engine.embedder.identity}; sets {', '.join(s.name for s in sets)}")
    texts, vectors, seconds = real_sample(engine, sets, args.real_passages, args.cache_dir)
    print(
        f"REUSED VECTORS: {len(texts)} real passages embedded"
        + (f" ({seconds:.0f} CPU-s)" if seconds else " (cached)")
        + f"; every corpus passage gets one of them plus N(0, {args.noise}) noise per dimension. "
        "Query embedding, indexing, search and answers are real."
    )
    articles = load_articles([s / "articles" for s in sets]).articles
    # A warm-up question, then new questions for each of the three timings' passes.
    questions = _questions(sets, 1 + 3 * args.runs * args.queries)
    chunker = Chunker(
        engine.embedder.count_tokens, engine.embedder.max_tokens, engine.settings.chunking
    )

    work = args.work_dir or Path(tempfile.mkdtemp(prefix="citebot-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    log = work / "bench.log"
    sample = work / "sample.npz"
    np.savez(sample, texts=np.array(texts), vectors=np.asarray(vectors))
    print(f"work dir {work} (worker and server logs in {log})", flush=True)
    columns: list[Column] = []
    try:
        for size in args.chunks:
            folder = work / f"articles-{size}"
            count = write_corpus(articles, chunker, size, args.chunks_per_article, folder)
            print(f"{size:,} chunks: {count:,} synthetic articles written", flush=True)
            columns += _measure(args, size, folder, sample, questions, work, log)
    finally:
        if not args.work_dir:
            shutil.rmtree(work, ignore_errors=True)
    if columns:
        print()
        print_table(columns)


def _measure(args, size, folder, sample, questions, work, log) -> list[Column]:
    job = {"articles": str(folder), "sample": str(sample), "noise": args.noise}
    columns = []
    embedded_dir = work / f"embedded-{size}"
    embedded_ready = False
    for mode in args.modes:
        if mode == "embedded" or args.server_store == "build" or not embedded_ready:
            data_dir = work / f"{mode}-{size}"
            build = True
        else:
            data_dir = embedded_dir
            build = False
        server = ChromaServer(data_dir / "chroma", log) if mode == "server" else None
        try:
            url = server.url if server else None
            common = {**job, "data_dir": str(data_dir), "url": url}
            print(f"  {mode}: {'indexing' if build else 'serving the embedded store'}", flush=True)
            result = run_worker("build", {**common, "build": build, "noop_runs": args.runs}, log)
            build = result.get("build_s") is not None
            embedded_ready |= mode == "embedded"
            if build:
                print(f"  {mode}: indexed in {result['build_s']:.0f} s", flush=True)
            read_job = {**common, "questions": questions, "queries": args.queries}
            read_job["runs"] = args.runs
            read_job["server_pid"] = server.pid if server else None
            read = run_worker("read", read_job, log)
            server_rss = server.peak_rss_mb() if server else None
            if args.busy:
                with _spinning():
                    busy_read = run_worker("read", read_job, log)
        finally:
            if server:
                server.stop()
        disk = disk_mb(data_dir)
        columns.append(Column(size, mode, result if build else {}, result, read, server_rss, disk))
        if args.busy:
            # The same store: its sizes, not its no-op reindex (not rerun under load).
            sizes = {key: result[key] for key in ("articles", "chunks", "vectors")}
            columns.append(Column(size, f"{mode}, busy", {}, sizes, busy_read, None, disk))
        print(f"  {mode}: done", flush=True)
    return columns


@contextlib.contextmanager
def _spinning() -> Iterator[None]:
    """One process keeping a core busy meanwhile."""
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        yield
    finally:
        spinner.kill()
        spinner.wait()


def _default_eval_dir() -> Path:
    """../shared/eval beside the checkout (or beside the folder of worktrees)."""
    candidates = [ROOT.parent / "shared" / "eval", ROOT.parent.parent / "shared" / "eval"]
    return next((path for path in candidates if path.is_dir()), candidates[0])


def _questions(sets: Sequence[Path], count: int) -> list[str]:
    """`count` questions from every set, shuffled: the mix of languages a team asks in."""
    pool = [q.question for s in sets if (s / "questions.jsonl").exists() for q in load_questions(s)]
    random.Random(0).shuffle(pool)
    return pool[:count]


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--worker":
        worker = {"build": worker_build, "read": worker_read}[sys.argv[2]]
        print(json.dumps(worker(json.loads(sys.argv[3]))))
    else:
        main()
