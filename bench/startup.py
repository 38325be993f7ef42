"""Start-up cost of the CLI: median wall and CPU seconds of a warm `citebot ask`, and where a
call's time goes.

    python bench/startup.py [--runs 5] [--question "..."]

Indexes `examples/articles` into a temporary data directory once, runs `citebot ask` once to
warm the file cache, then times `--runs` more, each a fresh process as a user would start it
(CPU seconds are the child's user + system time), and reports the machine's load around them.
Then, in one more process, it times the phases of a call: importing the CLI, the engine's
imports, loading the embedding model, opening Chroma and loading BM25 (building the
retriever), and answering. Target here: a warm `ask` under 3 s wall.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
_CLI = "import sys; from bot.cli import main; sys.exit(main(sys.argv[1:]))"
_PHASES = """
import json, sys, time
marks = [("start", time.perf_counter(), time.process_time())]
def mark(name):
    marks.append((name, time.perf_counter(), time.process_time()))
import bot.cli
mark("import bot.cli")
from bot.answer.engine import Engine
from bot.settings import load_settings
mark("import the engine (Chroma, BM25, models' code)")
engine = Engine(load_settings())
engine.embedder
mark("load the embedding model")
retriever = engine.retriever()
mark("open Chroma and load BM25")
answerer = engine.responder(retriever)
answerer.answer(sys.argv[1])
mark("first answer (query embedding, search, background vectors)")
answerer.answer(sys.argv[1])
mark("second answer (warm)")
print(json.dumps(marks))
"""


def _run(args: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU seconds of one child process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(args, env=env, cwd=REPO, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--question", default="What models did TBD distill from?")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="citebot-startup-") as data:
        env = {
            **os.environ,
            "CITEBOT_DATA_DIR": data,
            "PYTHONPATH": str(REPO),
            "HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE", "1"),
        }
        cli = [sys.executable, "-c", _CLI]
        _run([*cli, "index", "examples/articles"], env)
        _run([*cli, "ask", args.question], env)  # warm the file cache
        load_before = os.getloadavg()[0]
        runs = [_run([*cli, "ask", args.question], env) for _ in range(args.runs)]
        load_after = os.getloadavg()[0]
        walls, cpus = zip(*runs, strict=True)
        each = ", ".join(f"{wall:.2f}" for wall in walls)
        print(
            f"warm `citebot ask`, median of {args.runs}: {statistics.median(walls):.2f} s wall, "
            f"{statistics.median(cpus):.2f} s CPU (walls: {each})"
        )
        # Wall time follows what else the machine runs; CPU seconds much less so.
        print(f"load average (1 min) {load_before:.2f} before the runs, {load_after:.2f} after")
        out = subprocess.run(
            [sys.executable, "-c", _PHASES, args.question],
            env=env,
            cwd=REPO,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        marks = json.loads(out.strip().splitlines()[-1])
    print("where one call's time goes (wall / CPU seconds):")
    for (_, wall0, cpu0), (name, wall1, cpu1) in itertools.pairwise(marks):
        print(f"  {wall1 - wall0:6.2f} / {cpu1 - cpu0:6.2f}  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
