"""Vectors kept by content hash, so a reindex embeds only chunks and sentences it has not seen."""
from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Protocol, Sequence

import numpy as np
from tqdm import tqdm

from index.embedding import Embedder


class Embeddable(Protocol):
    """Anything with a content hash and the text to embed (a Chunk, a Sentence)."""

    hash: str
    embed_text: str


class VectorCache:
    """A SQLite table (model, chunk hash) -> float32 vector, shared by all generations."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.conn = sqlite3.connect(path, timeout=30)
        self.conn.execute("CREATE TABLE IF NOT EXISTS vectors (model TEXT, hash TEXT, vec BLOB, "
                          "PRIMARY KEY (model, hash))")

    def embed(self, embedder: Embedder, chunks: Sequence[Embeddable], progress: bool = False) -> np.ndarray:
        """Return one vector per chunk, embedding only the chunks missing from the cache."""
        model = f"{embedder.identity['model']}:{embedder.dim}"
        out = np.empty((len(chunks), embedder.dim), dtype=np.float32)
        missing = []
        for i, chunk in enumerate(chunks):
            row = self.conn.execute("SELECT vec FROM vectors WHERE model = ? AND hash = ?",
                                    (model, chunk.hash)).fetchone()
            if row is None:
                missing.append(i)
            else:
                out[i] = np.frombuffer(row[0], dtype=np.float32)
        if missing:
            with tqdm(total=len(missing), desc="embedding", unit="chunk", disable=not progress) as bar:
                fresh = embedder.encode_passages([chunks[i].embed_text for i in missing], progress=bar)
            with self.conn:
                self.conn.executemany("INSERT OR REPLACE INTO vectors VALUES (?, ?, ?)",
                                      [(model, chunks[i].hash, fresh[j].tobytes()) for j, i in enumerate(missing)])
            out[missing] = fresh
        return out

    def close(self) -> None:
        self.conn.close()
