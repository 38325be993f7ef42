"""Whether an int8 engine of the bundled model keeps its quality: cost, vectors and dev-set
metrics, each against the full-precision conversion in the same run.

    python bench/int8.py ../shared/eval/xquad-en-zh-dev ../shared/eval/drcd-dev \
        [--articles 100] [--variants fp32 torch-int8 ...] [--eval fp32 onnx-int8 ...] \
        [--speed-articles 10] [--threads 1 2] [--repeats 3] [--work DIR]

Every variant runs the bundled weights' sentence-transformers conversion
(`index.bundled_model`; the figures are in its docstring). The ONNX variants need the `onnx`
package (`pip install onnx`) besides onnxruntime:
- `fp32`: as Citebot runs it (torch), the reference;
- `torch-int8`: torch's dynamic quantisation of every Linear (qint8 weights, one scale per
  tensor; activations quantised per call);
- `onnx-fp32`: the same graph exported to ONNX and run by onnxruntime, unquantised (what the
  export and the runtime change on their own);
- `onnx-int8`: onnxruntime's dynamic quantisation of every Linear, int8 weights with one
  scale per output channel;
- `onnx-int8-ffn`: only the feed-forward Linears quantised so, attention kept fp32;
- `onnx-int8-no-ffn-out`: every Linear but the feed-forward output projection, whose input
  (after GELU) has the outliers a per-tensor activation scale clips. Chosen by vector cosine on
  drcd-dev articles 300-329, outside the subsets evaluated, never by the dev questions.

Figures:
- `engine`: CPU-s per 1,000 tokens of the embedder alone on the pipeline's passages of the
  last set's first `--speed-articles` articles, per thread count (medians of `--repeats`);
- `cos docs` / `cos queries`: cosine to the fp32 vectors of those passages and of each set's
  first 200 questions, mean and min;
- `citebot eval` metrics (hit@1, hit@3, MRR@10, answer_hit, answer_first_hit; and the share
  abstained, for diagnosis) on each set's first `--articles` articles (sorted by file name) and
  their questions, the index built and searched by the variant (documents and questions both),
  one thread. Each variant is judged by fp32's abstention policy, as its own identity would be
  given if it became an option.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import tempfile
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # this checkout's code, whichever one is installed

from bench.indexing import article_folder, engine_figures, passage_groups  # noqa: E402
from bot.answer.abstention import AbstentionPolicy  # noqa: E402
from bot.answer.engine import Engine  # noqa: E402
from bot.evaluation import evaluate_set, load_questions  # noqa: E402
from bot.settings import Settings  # noqa: E402
from index.bundled_model import PROMPTS, converted_folder  # noqa: E402
from index.embedding import (  # noqa: E402
    BUNDLED_IDENTITY,
    BUNDLED_MODEL,
    Embedder,
    EmbedderSpec,
    SentenceTransformerEmbedder,
    load_bundled,
)

VARIANTS = (
    "fp32",
    "torch-int8",
    "onnx-fp32",
    "onnx-int8",
    "onnx-int8-ffn",
    "onnx-int8-no-ffn-out",
)
METRICS = ("hit@1", "hit@3", "mrr@10", "answer_hit", "answer_first_hit")
# What "keeps its quality" means: every metric within this of fp32's, on every set.
TOLERANCE = 0.005
_QUESTIONS_FOR_COSINE = 200


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sets", nargs="+", type=Path)
    parser.add_argument("--articles", type=int, default=100)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument(
        "--eval",
        nargs="*",
        default=[v for v in VARIANTS if v != "onnx-fp32"],
        choices=VARIANTS,
        help="the variants whose dev-set metrics are measured (fp32 always is)",
    )
    parser.add_argument("--speed-articles", type=int, default=10)
    parser.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--work", type=Path, help="kept between runs (default: a temporary one)")
    args = parser.parse_args()
    os.environ["HF_HUB_OFFLINE"] = "1"
    warnings.filterwarnings("ignore")  # torch.ao's and the ONNX exporter's deprecation notices
    logging.disable(logging.WARNING)  # per-index build notes and tokenizer length warnings

    work = args.work or Path(tempfile.mkdtemp(prefix="citebot-int8-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        cache = work / "cache"
        folder = converted_folder(cache / "models")
        builders = _builders(folder, work / "onnx", cache)
        _quality(
            builders, [_subset(work / "sets", s, args.articles) for s in args.sets], args.eval, work
        )
        _engine(builders, args, work)
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)


def _quality(
    builders: dict[str, Callable[[int], Embedder]],
    subsets: Sequence[Path],
    variants: Sequence[str],
    work: Path,
) -> None:
    """The dev-set metrics of fp32 and each variant, and whether each holds within TOLERANCE."""
    evaluated = ["fp32", *(v for v in variants if v != "fp32")]
    table: dict[str, dict[str, dict]] = {}
    for variant in evaluated:
        embedder = builders[variant](1)
        for subset in subsets:
            rows = table.setdefault(subset.name, {})
            rows[variant] = _metrics(embedder, subset, work / "data" / variant)
            _print_row(subset.name, variant, rows)
    for variant in evaluated[1:]:
        worst = max(
            abs(rows[variant][key] - rows["fp32"][key])
            for rows in table.values()
            for key in METRICS
        )
        verdict = "holds" if worst <= TOLERANCE else "does not hold"
        print(f"{variant:21} largest change {worst:.4f}: {verdict} (tolerance {TOLERANCE})")


def _engine(
    builders: dict[str, Callable[[int], Embedder]], args: argparse.Namespace, work: Path
) -> None:
    """Each variant's engine cost per thread count, and its vectors' cosine to fp32's."""
    speed_files = sorted((args.sets[-1] / "articles").iterdir())[: args.speed_articles]
    speed_folder = article_folder(work, speed_files)
    reference = builders["fp32"](1)
    passages = _passage_texts(reference, speed_folder)
    questions = [q.question for s in args.sets for q in load_questions(s)[:_QUESTIONS_FOR_COSINE]]
    fp32_docs = reference.embed_documents(passages)
    fp32_queries = reference.embed_queries(questions)
    print(
        f"engine on {args.sets[-1].name}'s first {args.speed_articles} articles "
        f"({len(passages)} passages); cosine also on {len(questions)} questions"
    )
    for variant in args.variants:
        costs = []
        for threads in args.threads:
            embedder = builders[variant](threads)
            cpu = engine_figures(embedder, speed_folder, args.repeats)["engine_cpu_per_1k"]
            costs.append(f"{threads} thread(s) {cpu:.3f}")
        docs = _cosines(embedder.embed_documents(passages), fp32_docs)
        queries = _cosines(embedder.embed_queries(questions), fp32_queries)
        print(
            f"{variant:21} engine CPU-s/1k tokens: {', '.join(costs)}; "
            f"cos docs {docs}, cos queries {queries}",
            flush=True,
        )


def _builders(folder: Path, onnx_dir: Path, cache: Path) -> dict[str, Callable[[int], Embedder]]:
    """Each variant's embedder for a thread count (ONNX files exported and quantised on first
    use)."""

    def fp32(threads: int) -> Embedder:
        import torch

        torch.set_num_threads(threads)
        return load_bundled(EmbedderSpec(backend="bundled", model=BUNDLED_MODEL, cache_dir=cache))

    def torch_int8(threads: int) -> Embedder:
        import torch
        from sentence_transformers import SentenceTransformer

        torch.set_num_threads(threads)
        model = SentenceTransformer(
            str(folder), device="cpu", model_kwargs={"add_pooling_layer": False}
        )
        quantised = torch.ao.quantization.quantize_dynamic(
            model, {torch.nn.Linear}, dtype=torch.qint8
        )
        return _embedder(quantised, folder, "torch-int8", cache)

    def onnx(variant: str) -> Callable[[int], Embedder]:
        def build(threads: int) -> Embedder:
            model = _OnnxModel(_onnx_file(folder, onnx_dir, variant), folder, threads)
            return _embedder(model, folder, variant, cache)

        return build

    return {
        "fp32": fp32,
        "torch-int8": torch_int8,
        **{v: onnx(v) for v in VARIANTS if v.startswith("onnx-")},
    }


def _embedder(model: object, folder: Path, variant: str, cache: Path) -> Embedder:
    """A variant as Citebot runs any sentence-transformers model, under an identity of its own
    (its vectors differ from fp32's, so no index or cached vector is shared)."""
    identity = f"bench-{variant}:{BUNDLED_MODEL}"
    return SentenceTransformerEmbedder(model, str(folder), dict(PROMPTS), identity, cache)


def _onnx_file(folder: Path, onnx_dir: Path, variant: str) -> Path:
    """The variant's ONNX file: the converted BertModel exported once, then quantised."""
    onnx_dir.mkdir(parents=True, exist_ok=True)
    exported = onnx_dir / "onnx-fp32.onnx"
    if not exported.exists():
        _export(folder, exported)
    target = onnx_dir / f"{variant}.onnx"
    if target.exists():
        return target
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    linears = [
        node.name
        for node in onnx.load(str(exported)).graph.node
        if node.op_type == "MatMul" and "/attention/self/MatMul" not in node.name
    ]
    feed_forward = [n for n in linears if "/intermediate/" in n or "/output/dense" in n]
    feed_forward = [n for n in feed_forward if "/attention/" not in n]
    chosen = {
        "onnx-int8": linears,
        "onnx-int8-ffn": feed_forward,
        "onnx-int8-no-ffn-out": [
            n for n in linears if n not in feed_forward or "/intermediate/" in n
        ],
    }[variant]
    quantize_dynamic(
        str(exported),
        str(target),
        op_types_to_quantize=["MatMul"],
        nodes_to_quantize=chosen,
        per_channel=True,
        weight_type=QuantType.QInt8,
    )
    return target


def _export(folder: Path, target: Path) -> None:
    import torch
    from transformers import BertModel

    class LastHiddenState(torch.nn.Module):
        def __init__(self, model: torch.nn.Module) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            return self.model(input_ids=input_ids, attention_mask=attention_mask)[0]

    model = LastHiddenState(BertModel.from_pretrained(folder, add_pooling_layer=False).eval())
    ids = torch.tensor([[0, 6, 2]])
    axes = {0: "batch", 1: "tokens"}
    torch.onnx.export(
        model,
        (ids, torch.ones_like(ids)),
        str(target),
        input_names=["input_ids", "attention_mask"],
        output_names=["last_hidden_state"],
        dynamic_axes={"input_ids": axes, "attention_mask": axes, "last_hidden_state": axes},
        opset_version=17,
        dynamo=False,
    )


class _OnnxModel:
    """What `SentenceTransformerEmbedder` uses of a SentenceTransformer (tokenizer,
    max_seq_length, encode), run by onnxruntime: the same tokens, mean pooling over the mask
    and L2 normalisation as the converted folder's modules, batches sorted by length."""

    max_seq_length = 512

    def __init__(self, path: Path, folder: Path, threads: int) -> None:
        import onnxruntime
        from transformers import AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(str(folder))
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        # Like OMP_WAIT_POLICY=PASSIVE for torch: idle threads sleep rather than spin.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self._session = onnxruntime.InferenceSession(
            str(path), options, providers=["CPUExecutionProvider"]
        )

    def get_sentence_embedding_dimension(self) -> int:
        return 384

    def encode(
        self, texts: Sequence[str], prompt: str | None = None, batch_size: int = 32, **_: object
    ) -> np.ndarray:
        texts = [(prompt or "") + text for text in texts]
        out = np.zeros((len(texts), 384), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        for first in range(0, len(order), batch_size):
            rows = order[first : first + batch_size]
            encoded = self.tokenizer(
                [texts[i] for i in rows],
                padding=True,
                truncation=True,
                max_length=self.max_seq_length,
                return_tensors="np",
            )
            mask = encoded["attention_mask"].astype(np.int64)
            (states,) = self._session.run(
                None, {"input_ids": encoded["input_ids"].astype(np.int64), "attention_mask": mask}
            )
            weights = mask[..., None].astype(np.float32)
            vectors = (states * weights).sum(axis=1) / weights.sum(axis=1)
            out[rows] = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
        return out


def _passage_texts(embedder: Embedder, folder: Path) -> list[str]:
    from index.passages import _embedded_text, passage_records

    return [
        _embedded_text(article, record)
        for article, chunks in passage_groups(embedder, folder)
        for chunk in chunks
        for record in passage_records(chunk)
    ]


def _cosines(vectors: np.ndarray, reference: np.ndarray) -> str:
    cosines = (vectors * reference).sum(axis=1)
    return f"{cosines.mean():.4f} (min {cosines.min():.4f})"


def _subset(root: Path, set_dir: Path, articles: int) -> Path:
    """The set's first `articles` articles (by file name) and the questions about them."""
    target = root / str(articles) / set_dir.name
    if target.exists():
        return target
    files = sorted((set_dir / "articles").iterdir())[:articles]
    (target / "articles").mkdir(parents=True)
    for file in files:
        shutil.copyfile(file, target / "articles" / file.name)
    kept = {file.name for file in files}
    lines = (set_dir / "questions.jsonl").read_text(encoding="utf-8").splitlines()
    rows = [line for line in lines if line.strip() and _article_of(line) in kept]
    (target / "questions.jsonl").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return target


def _article_of(line: str) -> str:
    import json

    return json.loads(line)["article"]


class _SamePolicy(Settings):
    """The settings, with fp32's abstention policy whatever the embedder's identity."""

    def abstention(self, embedder_identity: str) -> AbstentionPolicy | None:
        return super().abstention(BUNDLED_IDENTITY)


def _metrics(embedder: Embedder, subset: Path, data_dir: Path) -> dict:
    settings = _SamePolicy(CITEBOT_DATA_DIR=str(data_dir))
    metrics = evaluate_set(Engine(settings, embedder), subset)
    return {key: metrics[key] for key in (*METRICS, "abstained", "questions")}


def _print_row(set_name: str, variant: str, rows: dict[str, dict]) -> None:
    figures = rows[variant]
    cells = []
    for key in METRICS:
        cell = f"{key} {figures[key]:.3f}"
        if variant != "fp32":
            cell += f" ({figures[key] - rows['fp32'][key]:+.3f})"
        cells.append(cell)
    cells.append(f"abstained {figures['abstained']:.3f}")
    print(f"{set_name} ({figures['questions']} q) {variant:21} {'  '.join(cells)}", flush=True)


if __name__ == "__main__":
    main()
