"""The data folder's layout: every file and folder name in it, spelt once.

    <data>/bulletins/        the corpus: one file per issue (what ingest keeps)
    <data>/index/            index generations (bulletins.db, vectors.faiss, manifest.json each), ``current``
                             pointing at the served one and ``previous`` at the one before
    <data>/vectors.db        chunk and sentence vectors, cached by text and model
    <data>/models/           converted embedding models (e5-st, e5-onnx)
    <data>/querylog.db       the query log (questions, answers, feedback; user ids salted and hashed)
    <data>/querylog.salt     its salt, when no env var holds one
    <data>/follows.db        followed topics and what was sent

Backup and restore take every SQLite file listed in ``SQLITE_FILES``.
"""
from __future__ import annotations

CORPUS_DIR = "bulletins"
INDEX_DIR = "index"
MODELS_DIR = "models"
VECTORS_DB = "vectors.db"
QUERYLOG_DB = "querylog.db"
QUERYLOG_SALT = "querylog.salt"
FOLLOWS_DB = "follows.db"
SQLITE_FILES = (QUERYLOG_DB, VECTORS_DB, FOLLOWS_DB)

# inside <data>/index/: the pointers, and what one generation directory is made of
CURRENT, PREVIOUS = "current", "previous"
DB_FILE, FAISS_FILE, MANIFEST_FILE = "bulletins.db", "vectors.faiss", "manifest.json"
INDEX_FILES = (DB_FILE, FAISS_FILE, MANIFEST_FILE)
