"""One index generation on disk: SQLite (issues, articles, chunks, FTS5 terms) + a FAISS file + manifest."""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np
import sqlite_utils

from corpus.models import Article, Issue
from index.errors import IndexCorrupt, IndexMismatch
from index import faults
from index.chunking import Chunk
from index.keywords import fts_query, sound_of, tokenize
from index.paths import DB_FILE, FAISS_FILE, MANIFEST_FILE
from index.settings import VectorIndexSettings

FORMAT = 3                   # 2: sentence vectors in the shared vector cache; 3: dead_vectors


@dataclass(frozen=True)
class StoredArticle:
    """An article as stored, with its issue's metadata."""

    id: int
    issue_key: str
    issue_date: dt.date
    position: int
    title: str
    body: str
    unit: str
    event_dates: tuple[dt.date, ...]

    @property
    def text(self) -> str:
        return f"{self.title}\n{self.body}" if self.body else self.title


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _create_schema(db: sqlite_utils.Database) -> None:
    db["issues"].create({"key": str, "date": str, "number": str, "source_name": str,
                         "content_hash": str, "articles": int, "ingested_at": str}, pk="key")
    db["articles"].create({"id": int, "issue_key": str, "position": int, "title": str, "body": str,
                           "unit": str, "event_dates": str}, pk="id", foreign_keys=[("issue_key", "issues")])
    db["chunks"].create({"id": int, "article_id": int, "seq": int, "text": str, "hash": str},
                        pk="id", foreign_keys=[("article_id", "articles")])
    db["articles"].create_index(["issue_key"])
    db["chunks"].create_index(["article_id"])
    db["dead_vectors"].create({"id": int}, pk="id")    # HNSW ids of removed chunks, skipped by every search
    db.execute("CREATE VIRTUAL TABLE chunk_terms USING fts5(terms, tokenize='unicode61 remove_diacritics 0')")
    db.execute("CREATE VIRTUAL TABLE chunk_vocab USING fts5vocab(chunk_terms, 'row')")


def all_vectors(index: faiss.Index) -> tuple[np.ndarray, np.ndarray]:
    """Return (ids, vectors) held by an IndexIDMap2 of any flat-storage index."""
    ids = faiss.vector_to_array(index.id_map).astype(np.int64)
    return ids, index.index.reconstruct_n(0, index.ntotal) if index.ntotal else np.zeros((0, index.d), np.float32)


def index_kind(index: faiss.Index) -> str:
    """Return "hnsw" or "flat" for an IndexIDMap2."""
    return "hnsw" if isinstance(faiss.downcast_index(index.index), faiss.IndexHNSWFlat) else "flat"


def sized_index(ids: np.ndarray, vectors: np.ndarray, settings: VectorIndexSettings,
                progress: bool = False) -> faiss.Index:
    """Return an IndexIDMap2 over the vectors: exact below ``exact_below`` vectors, HNSW from it on."""
    dim = vectors.shape[1]
    if len(ids) < settings.exact_below:
        inner = faiss.IndexFlatIP(dim)
    else:
        inner = faiss.IndexHNSWFlat(dim, settings.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        inner.hnsw.efConstruction = settings.ef_construction
        inner.hnsw.efSearch = settings.ef_search
    index = faiss.IndexIDMap2(inner)
    step = 10000                                    # in steps, for a progress bar on large builds
    from tqdm import tqdm
    for start in tqdm(range(0, len(ids), step), desc="faiss", unit="10k vec", disable=not progress or len(ids) <= step):
        index.add_with_ids(np.ascontiguousarray(vectors[start:start + step], dtype=np.float32), ids[start:start + step])
    return index


def damage(path: Path, deep: bool = False, manifest: dict | None = None) -> str | None:
    """Return why a generation is damaged, or None when it looks whole.

    Cheap (every /healthz): the manifest reads, and every file it lists exists with the size it
    recorded. ``deep`` (on open, on a timer or on demand): every file's SHA-256 as well.
    """
    path = Path(path)
    if manifest is None:
        try:
            manifest = json.loads((path / MANIFEST_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return f"索引清单缺失或损坏：{path / MANIFEST_FILE}"
    files, sizes = manifest.get("files"), manifest.get("sizes", {})
    if not isinstance(files, dict) or not isinstance(sizes, dict):
        return f"索引清单损坏：{path / MANIFEST_FILE}"
    for name, digest in files.items():
        file = path / Path(str(name)).name
        try:
            size = file.stat().st_size
        except OSError:
            return f"索引文件缺失：{file}"
        if name in sizes and sizes[name] != size:
            return f"索引文件大小不符（{size} 字节，清单记录 {sizes[name]} 字节）：{file}"
        if deep and sha256_file(file) != digest:
            return f"索引文件损坏或不完整（校验和不符）：{file}"
    return None


class GenerationHealth:
    """The served generation's health for /healthz: cheap checks each call, checksums now and then."""

    def __init__(self, deep_every_s: float = 600.0):
        self.deep_every_s = deep_every_s
        self._deep: dict[Path, tuple[float, str | None]] = {}      # path -> (when, result) of the last deep check
        self._lock = threading.Lock()

    def __call__(self, path: Path, deep: bool = False) -> str | None:
        """Return why the generation at ``path`` is damaged, or None."""
        reason = damage(path)
        if reason:
            return reason
        with self._lock:
            when, result = self._deep.get(Path(path), (float("-inf"), None))
            if deep or time.monotonic() - when >= self.deep_every_s:
                result = damage(path, deep=True)
                self._deep = {Path(path): (time.monotonic(), result)}
            return result


def index_errors(fn):
    """Wrap a function reading the served index: SQLite finding its file damaged becomes IndexCorrupt."""
    def wrapped(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except sqlite3.DatabaseError as exc:
            if isinstance(exc, sqlite3.OperationalError) and "malformed" not in str(exc) \
                    and "not a database" not in str(exc) and "disk I/O" not in str(exc):
                raise
            raise IndexCorrupt(f"正在服务的索引已损坏（{exc}）；请运行 bulletin-bot reindex") from None
    return wrapped


def issue_hashes(path: Path) -> dict[str, str]:
    """Return issue key -> content hash of a generation, reading its database only (no FAISS, no checksums)."""
    conn = sqlite3.connect(f"file:{Path(path) / DB_FILE}?mode=ro", uri=True)
    try:
        return dict(conn.execute("SELECT key, content_hash FROM issues"))
    except sqlite3.DatabaseError as exc:
        raise IndexCorrupt(f"索引数据库无法读取：{path}（{exc}）；请运行 bulletin-bot reindex") from None
    finally:
        conn.close()


class IndexStore:
    """Read and write one generation directory.

    The FAISS index is exact (IndexFlatIP) while small and HNSW once it holds ``exact_below`` vectors.
    HNSW cannot remove vectors: removing an issue marks its vectors dead (table ``dead_vectors``;
    searches skip them, new chunks never reuse their ids), and ``save`` rebuilds HNSW from the live
    vectors once the dead reach ``rebuild_dead_share`` of them.
    """

    def __init__(self, path: Path, identity: dict, *, create: bool = False, verify: bool = True,
                 vector_settings: VectorIndexSettings | None = None):
        self.path = Path(path)
        self.identity = identity
        self.vector_settings = vector_settings or VectorIndexSettings()
        if create:
            self.path.mkdir(parents=True, exist_ok=True)
            self.db = sqlite_utils.Database(self.path / DB_FILE)
            _create_schema(self.db)
            self.vectors = faiss.IndexIDMap2(faiss.IndexFlatIP(identity["embedding"]["dim"]))
        else:
            self._check_manifest(verify)
            self.db = sqlite_utils.Database(sqlite3.connect(self.path / DB_FILE, check_same_thread=False))
            try:
                self.vectors = faiss.read_index(str(self.path / FAISS_FILE))
            except RuntimeError:                    # faiss' reader on a truncated or garbled file
                self.db.conn.close()
                raise IndexCorrupt(f"索引文件损坏：{self.path / FAISS_FILE}；请运行 bulletin-bot reindex") from None
        self._articles: dict[int, StoredArticle] = {}
        self._articles_lock = threading.Lock()
        self._chunk_count: int | None = None
        self._document_counts: dict[str, int] = {}
        self._sounds: dict[str, str] | None = None
        self._sounds_lock = threading.Lock()
        try:
            self._dead = np.array([r[0] for r in self.db.execute("SELECT id FROM dead_vectors")], dtype=np.int64)
        except sqlite3.DatabaseError as exc:
            self.db.conn.close()
            raise IndexCorrupt(f"索引数据库无法读取：{self.path / DB_FILE}（{exc}）；请运行 bulletin-bot reindex") from None
        self._search_params = None

    # -- opening -------------------------------------------------------------------------------
    def _check_manifest(self, verify: bool) -> None:
        manifest_path = self.path / MANIFEST_FILE
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            raise IndexCorrupt(f"索引清单缺失或损坏：{manifest_path}；请运行 bulletin-bot reindex") from None
        built = {k: manifest.get(k) for k in ("format", "embedding", "chunking")}
        wanted = {"format": FORMAT, **self.identity}
        if built != wanted:
            raise IndexMismatch(f"索引由其他设置构建：{built}，当前设置：{wanted}；请运行 bulletin-bot reindex")
        reason = damage(self.path, deep=verify, manifest=manifest)
        if reason:
            raise IndexCorrupt(f"{reason}；请运行 bulletin-bot reindex")
        self.manifest = manifest

    # -- writing -------------------------------------------------------------------------------
    def remove_issue(self, key: str) -> int:
        """Delete an issue with its articles, chunks, terms and vectors; return articles removed."""
        ids = [r["id"] for r in self.db.query(
            "SELECT c.id FROM chunks c JOIN articles a ON a.id = c.article_id WHERE a.issue_key = ?", [key])]
        if ids:
            if index_kind(self.vectors) == "hnsw":
                self.db.conn.executemany("INSERT INTO dead_vectors (id) VALUES (?)", [(i,) for i in ids])
                self._dead = np.union1d(self._dead, np.asarray(ids, dtype=np.int64))
                self._search_params = None
            else:
                self.vectors.remove_ids(np.asarray(ids, dtype=np.int64))
            self.db.conn.executemany("DELETE FROM chunk_terms WHERE rowid = ?", [(i,) for i in ids])
        removed = self.db.execute("SELECT count(*) FROM articles WHERE issue_key = ?", [key]).fetchone()[0]
        self.db.execute("DELETE FROM chunks WHERE article_id IN (SELECT id FROM articles WHERE issue_key = ?)", [key])
        self.db.execute("DELETE FROM articles WHERE issue_key = ?", [key])
        self.db.execute("DELETE FROM issues WHERE key = ?", [key])
        self._articles = {}
        self._chunk_count = None
        self._document_counts.clear()
        self._sounds = None
        return removed

    def add_issue(self, issue: Issue, chunks: list[Chunk], vectors: np.ndarray) -> None:
        """Insert an issue, its articles and its chunks (keyword terms, vectors)."""
        conn = self.db.conn                      # plain statements: sqlite-utils' insert inspects the table each time
        with conn:
            conn.execute("INSERT INTO issues (key, date, number, source_name, content_hash, articles, ingested_at) "
                         "VALUES (?, ?, ?, ?, ?, ?, ?)",
                         [issue.key, issue.date.isoformat(), issue.number, issue.source_name, issue.content_hash,
                          len(issue.articles), dt.datetime.now().isoformat(timespec="seconds")])
            article_ids = {}
            for article in issue.articles:
                article_ids[article.position] = conn.execute(
                    "INSERT INTO articles (issue_key, position, title, body, unit, event_dates) VALUES (?, ?, ?, ?, ?, ?)",
                    [issue.key, article.position, article.title, article.body, article.unit,
                     json.dumps([d.isoformat() for d in article.event_dates])]).lastrowid
            chunk_ids = []
            next_id = max(conn.execute("SELECT coalesce(max(id), 0) FROM chunks").fetchone()[0],
                          int(self._dead.max()) if len(self._dead) else 0) + 1   # a dead id is never reused
            for cid, chunk in enumerate(chunks, start=next_id):
                conn.execute("INSERT INTO chunks (id, article_id, seq, text, hash) VALUES (?, ?, ?, ?, ?)",
                             [cid, article_ids[chunk.article_key[1]], chunk.seq, chunk.text, chunk.hash])
                conn.execute("INSERT INTO chunk_terms(rowid, terms) VALUES (?, ?)",
                             [cid, " ".join(tokenize(chunk.embed_text))])
                chunk_ids.append(cid)
        if chunk_ids:
            self.vectors.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32),
                                      np.asarray(chunk_ids, dtype=np.int64))
        self._articles = {}
        self._chunk_count = None
        self._document_counts.clear()
        self._sounds = None

    def _fit_index(self, progress: bool) -> None:
        """Make the FAISS index the type its size calls for (flat <-> HNSW), dropping dead vectors when
        there are many (or the type changes)."""
        live = self.vectors.ntotal - len(self._dead)
        wanted = "hnsw" if live >= self.vector_settings.exact_below else "flat"
        if index_kind(self.vectors) != wanted or len(self._dead) > self.vector_settings.rebuild_dead_share * live:
            ids, vectors = all_vectors(self.vectors)
            keep = ~np.isin(ids, self._dead)
            self.vectors = sized_index(ids[keep], vectors[keep], self.vector_settings, progress)
            self.db.execute("DELETE FROM dead_vectors")
            self.db.conn.commit()
            self._dead = np.zeros(0, dtype=np.int64)
            self._search_params = None

    def save(self, extra: dict | None = None, progress: bool = False) -> None:
        """Fit the index type to the size, write the FAISS file with faiss' own writer, then the manifest."""
        self.db.conn.commit()
        self._fit_index(progress)
        faults.point("save.before-faiss")
        faiss.write_index(self.vectors, str(self.path / FAISS_FILE))
        for name in (DB_FILE, FAISS_FILE):               # whole on disk before the manifest vouches for them
            with open(self.path / name, "rb+") as fh:
                os.fsync(fh.fileno())
        files = {name: sha256_file(self.path / name) for name in (DB_FILE, FAISS_FILE)}
        sizes = {name: (self.path / name).stat().st_size for name in (DB_FILE, FAISS_FILE)}
        manifest = {"format": FORMAT, **self.identity, "files": files, "sizes": sizes,
                    "issues": self.db["issues"].count, "articles": self.db["articles"].count,
                    "chunks": self.db["chunks"].count, "vectors": int(self.vectors.ntotal - len(self._dead)),
                    "dead_vectors": len(self._dead),
                    "faiss": self._faiss_description(),
                    "saved_at": dt.datetime.now().isoformat(timespec="seconds"), **(extra or {})}
        faults.point("save.before-manifest")
        tmp = self.path / (MANIFEST_FILE + ".tmp")
        tmp.write_text(json.dumps(manifest, ensure_ascii=False, indent=2), encoding="utf-8")
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        tmp.replace(self.path / MANIFEST_FILE)
        faults.point("save.after-manifest")
        self.manifest = manifest

    def _faiss_description(self) -> dict:
        if index_kind(self.vectors) == "flat":
            return {"type": "IndexIDMap2(IndexFlatIP)", "exact": True}
        hnsw = faiss.downcast_index(self.vectors.index).hnsw
        return {"type": "IndexIDMap2(IndexHNSWFlat)", "exact": False, "M": self.vector_settings.hnsw_m,
                "ef_construction": hnsw.efConstruction, "ef_search": hnsw.efSearch}

    def close(self) -> None:
        self.db.conn.close()

    # -- reading -------------------------------------------------------------------------------
    def keyword_search(self, terms: tuple[str, ...], limit: int) -> list[tuple[int, float]]:
        """Return (chunk id, bm25 score, higher is better) for chunks matching any term."""
        if not terms:
            return []
        rows = self.db.execute(
            "SELECT rowid, -bm25(chunk_terms) FROM chunk_terms WHERE chunk_terms MATCH ? "
            "ORDER BY bm25(chunk_terms) LIMIT ?", [fts_query(terms), limit]).fetchall()
        return [(int(r[0]), float(r[1])) for r in rows]

    def vector_search(self, query: np.ndarray, limit: int) -> list[tuple[int, float]]:
        """Return (chunk id, cosine) of the nearest chunks."""
        if self.vectors.ntotal == 0:
            return []
        query = query.reshape(1, -1).astype(np.float32)
        if not len(self._dead):
            scores, ids = self.vectors.search(query, min(limit, self.vectors.ntotal))
        else:
            scores, ids = self.vectors.search(query, min(limit, self.vectors.ntotal), params=self._skip_dead())
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0]) if i >= 0]

    def _skip_dead(self) -> faiss.SearchParameters:
        """Return HNSW search parameters that pass over dead ids (built once until the next write)."""
        if self._search_params is None:
            batch = faiss.IDSelectorBatch(self._dead)
            params = faiss.SearchParametersHNSW(sel=faiss.IDSelectorNot(batch),
                                                efSearch=faiss.downcast_index(self.vectors.index).hnsw.efSearch)
            self._search_params = (params, batch)       # the selector must outlive the parameters
        return self._search_params[0]

    def term_document_counts(self, terms: tuple[str, ...]) -> dict[str, int]:
        """Return in how many chunks each term occurs (for IDF weights)."""
        if not terms:
            return {}
        missing = [t for t in dict.fromkeys(terms) if t not in self._document_counts]
        if missing:                  # fts5vocab counts by walking the term's postings: remembered until a write
            marks = ",".join("?" * len(missing))
            found = dict(self.db.execute(f"SELECT term, doc FROM chunk_vocab WHERE term IN ({marks})", missing))
            if len(self._document_counts) > 100_000:
                self._document_counts.clear()
            self._document_counts.update({t: int(found.get(t, 0)) for t in missing})
        return {t: self._document_counts[t] for t in terms if self._document_counts[t]}

    def spelling_of(self, sound: str) -> str | None:
        """Return the indexed word with this pinyin (``keywords.sound_of``), the most frequent one, or None."""
        return self.sounds().get(sound)

    def sounds(self) -> dict[str, str]:
        """Return pinyin -> the most frequent indexed word with it, built on first use (a few hundred thousand
        words a second) under a lock, whole before it is published, and forgotten at the next write."""
        sounds = self._sounds
        if sounds is None:
            with self._sounds_lock:
                if self._sounds is None:
                    best: dict[str, tuple[int, str]] = {}
                    for term, doc in self.db.execute("SELECT term, doc FROM chunk_vocab"):
                        key = sound_of(term)
                        if key is not None and doc > best.get(key, (0, ""))[0]:
                            best[key] = (doc, term)
                    self._sounds = {key: term for key, (_, term) in best.items()}
                sounds = self._sounds
        return sounds

    def chunk_count(self) -> int:
        """Return the number of chunks, counted once until the next write."""
        if self._chunk_count is None:
            self._chunk_count = self.db.execute("SELECT count(*) FROM chunks").fetchone()[0]
        return self._chunk_count

    def chunk_rows(self, ids: list[int]) -> dict[int, dict]:
        """Return chunk id -> {article_id, text} for the given ids."""
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        rows = self.db.execute(f"SELECT id, article_id, text FROM chunks WHERE id IN ({marks})", ids)
        return {r[0]: {"article_id": r[1], "text": r[2]} for r in rows}

    def all_articles(self) -> dict[int, StoredArticle]:
        """Return every article with its issue date, cached until the next write.

        The map is filled whole under a lock and only then published: a reader on another thread sees
        either no cache (and waits for it) or the complete map, never a partial one.
        """
        articles = self._articles
        if articles:
            return articles
        with self._articles_lock:
            if not self._articles:
                rows = self.db.execute(
                    "SELECT a.id, a.issue_key, i.date, a.position, a.title, a.body, a.unit, a.event_dates "
                    "FROM articles a JOIN issues i ON i.key = a.issue_key ORDER BY i.date, a.position")
                self._articles = {r[0]: StoredArticle(r[0], r[1], dt.date.fromisoformat(r[2]), r[3], r[4], r[5], r[6],
                                                      tuple(dt.date.fromisoformat(d) for d in json.loads(r[7])))
                                  for r in rows}
            return self._articles

    def issues(self) -> list[dict]:
        """Return the indexed issues, newest first."""
        return list(self.db.query("SELECT * FROM issues ORDER BY date DESC"))
