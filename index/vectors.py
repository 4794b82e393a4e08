"""Vectors kept by content hash, shared by all index generations.

A reindex embeds only the chunks and sentences it has not seen. Sentence vectors (used to pick the
sentence an answer quotes) live here only, not in each generation, so a generation stays small and
an ingest copies little; a sentence missing from the cache (a deleted or damaged cache file) is
embedded again when it is first quoted.
"""
from __future__ import annotations

import datetime as dt
import logging
import sqlite3
import threading
from pathlib import Path
from typing import Protocol, Sequence

import numpy as np
from tqdm import tqdm

from index.errors import StorageError
from index.chunking import Sentence, article_sentences
from index.embedding import Embedder

log = logging.getLogger(__name__)
LOOKUP_BATCH = 500


class Embeddable(Protocol):
    """Anything with a content hash and the text to embed (a Chunk, a Sentence)."""

    hash: str
    embed_text: str


def model_key(embedder: Embedder) -> str:
    """Return the cache key of the model that made a vector."""
    return f"{embedder.identity['model']}:{embedder.dim}"


class VectorCache:
    """A SQLite table (model, content hash) -> float32 vector; safe to share between threads and processes."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        try:
            self.conn = self._open()
        except sqlite3.OperationalError as exc:     # cannot be opened or written (a directory, read-only, disk
            raise _unusable(self.path, exc) from None   # full): not damage, so the file is left as it is
        except sqlite3.DatabaseError as exc:        # not a database (damaged): keep it aside, start empty
            aside = self.path.with_name(f"{self.path.name}.damaged-{dt.datetime.now():%Y%m%d-%H%M%S}")
            for suffix in ("-wal", "-shm"):         # the damaged file's journal must not be replayed into a new one
                self.path.with_name(self.path.name + suffix).unlink(missing_ok=True)
            self.path.rename(aside)
            log.warning("vector cache %s unreadable (%s), moved to %s; vectors will be embedded again",
                        self.path, exc, aside.name)
            try:
                self.conn = self._open()
            except sqlite3.DatabaseError as again:
                raise _unusable(self.path, again) from None

    def _open(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=60, check_same_thread=False)
        try:
            conn.execute("PRAGMA journal_mode=WAL")      # readers (the bot) never wait for a writer (an ingest)
            conn.execute("CREATE TABLE IF NOT EXISTS vectors (model TEXT, hash TEXT, vec BLOB, "
                         "PRIMARY KEY (model, hash))")
        except sqlite3.DatabaseError:
            conn.close()
            raise
        return conn

    def lookup(self, model: str, hashes: Sequence[str]) -> dict[str, np.ndarray]:
        """Return hash -> vector for the hashes the cache holds."""
        found: dict[str, np.ndarray] = {}
        unique = list(dict.fromkeys(hashes))
        with self._lock:
            for start in range(0, len(unique), LOOKUP_BATCH):
                part = unique[start:start + LOOKUP_BATCH]
                rows = self.conn.execute(
                    f"SELECT hash, vec FROM vectors WHERE model = ? AND hash IN ({','.join('?' * len(part))})",
                    [model, *part])
                found.update((h, np.frombuffer(v, dtype=np.float32)) for h, v in rows)
        return found

    def put(self, model: str, hashes: Sequence[str], vectors: np.ndarray) -> None:
        """Store one vector per hash."""
        try:
            with self._lock, self.conn:
                self.conn.executemany("INSERT OR REPLACE INTO vectors VALUES (?, ?, ?)",
                                      [(model, h, np.asarray(v, dtype=np.float32).tobytes())
                                       for h, v in zip(hashes, vectors)])
        except sqlite3.OperationalError as exc:     # disk full, read-only: the transaction is rolled back
            raise _unusable(self.path, exc) from None

    def embed(self, embedder: Embedder, items: Sequence[Embeddable], progress: bool = False) -> np.ndarray:
        """Return one vector per item, embedding only the items missing from the cache."""
        model = model_key(embedder)
        out = np.empty((len(items), embedder.dim), dtype=np.float32)
        known = self.lookup(model, [x.hash for x in items])
        missing = []
        for i, item in enumerate(items):
            vector = known.get(item.hash)
            if vector is None or vector.shape != (embedder.dim,):
                missing.append(i)
            else:
                out[i] = vector
        if missing:
            todo = list({items[i].hash: items[i] for i in missing}.values())     # each text once
            with tqdm(total=len(todo), desc="embedding", unit="passage", disable=not progress) as bar:
                fresh = embedder.encode_passages([x.embed_text for x in todo], progress=bar)
            self.put(model, [x.hash for x in todo], fresh)
            by_hash = dict(zip((x.hash for x in todo), fresh))
            for i in missing:
                out[i] = by_hash[items[i].hash]
        return out

    def all(self, model: str) -> np.ndarray:
        """Return every vector the cache holds for a model, one row each."""
        with self._lock:
            rows = self.conn.execute("SELECT vec FROM vectors WHERE model = ?", [model]).fetchall()
        return np.vstack([np.frombuffer(r[0], dtype=np.float32) for r in rows])

    def forget(self, model: str, hashes: Sequence[str]) -> None:
        """Drop the vectors of these hashes (they are embedded again when next needed)."""
        with self._lock, self.conn:
            self.conn.executemany("DELETE FROM vectors WHERE model = ? AND hash = ?", [(model, h) for h in hashes])

    def count(self) -> int:
        with self._lock:
            return self.conn.execute("SELECT count(*) FROM vectors").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self.conn.close()


def _unusable(path: Path, exc: Exception) -> StorageError:
    return StorageError(f"向量缓存无法打开或写入：{path}（{exc}）；请检查磁盘空间和写权限（vector cache unusable）")


class SentenceVectors:
    """An article's sentences in order with their vectors: from the cache, embedded there on a miss."""

    def __init__(self, cache: VectorCache, embedder: Embedder):
        self.cache, self.embedder = cache, embedder

    def __call__(self, article) -> tuple[list[Sentence], np.ndarray]:
        """``article`` is a stored or parsed article (title, body, position)."""
        sentences = article_sentences(article, getattr(article, "issue_key", ""))
        return sentences, self.cache.embed(self.embedder, sentences)
