"""The query log: who asked (a salted hash, never a raw id), what, whether it was answered, feedback."""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import os
import secrets
import sqlite3
import threading
from collections import Counter
from pathlib import Path

import sqlite_utils

from bot.results import Answer
from index.paths import QUERYLOG_DB, QUERYLOG_SALT


def load_salt(data_dir: Path, env_name: str) -> bytes:
    """Return the salt from the env var named in config, else a random one kept in the data directory."""
    if env_name and os.environ.get(env_name):
        return os.environ[env_name].encode("utf-8")
    path = Path(data_dir) / QUERYLOG_SALT
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32))
    return path.read_text().strip().encode("utf-8")


def user_key(salt: bytes, channel: str, user_id: object) -> str:
    """Return a salted hash of a user id: stable per user, not reversible without the salt."""
    return hmac.new(salt, f"{channel}:{user_id}".encode("utf-8"), hashlib.sha256).hexdigest()[:24]


class QueryLog:
    """Append questions and feedback to ``<data>/querylog.db`` (thread-safe)."""

    def __init__(self, data_dir: Path, salt: bytes):
        Path(data_dir).mkdir(parents=True, exist_ok=True)
        # one connection shared by worker threads (channels log from asyncio.to_thread); self._lock serialises it
        self.db = sqlite_utils.Database(sqlite3.connect(Path(data_dir) / QUERYLOG_DB, check_same_thread=False))
        self.db.conn.execute("PRAGMA busy_timeout = 5000")
        self._salt = salt
        self._lock = threading.Lock()
        if "queries" not in self.db.table_names():
            self.db["queries"].create({"id": int, "time": str, "user": str, "channel": str, "chat_type": str,
                                       "question": str, "abstained": int, "cited": str, "latency_ms": float,
                                       "feedback": int}, pk="id", not_null={"time", "question"})
            self.db["queries"].create_index(["time"])

    def user_hash(self, channel: str, user_id: object) -> str:
        """Return a salted hash of a user id: stable per user, not reversible without the salt."""
        return user_key(self._salt, channel, user_id)

    def record(self, *, channel: str, user_id: object, chat_type: str, question: str, answer: Answer,
               latency_ms: float, now: dt.datetime | None = None) -> int:
        """Log one answered question; return its id (for feedback)."""
        row = {"time": (now or dt.datetime.now()).isoformat(timespec="seconds"),
               "user": self.user_hash(channel, user_id), "channel": channel, "chat_type": chat_type,
               "question": question[:2000], "abstained": int(answer.abstained),
               "cited": json.dumps([s.citation() for s in answer.cited], ensure_ascii=False),
               "latency_ms": round(latency_ms, 1), "feedback": None}
        with self._lock:
            return self.db["queries"].insert(row).last_pk

    def feedback(self, query_id: int, value: int, user: str | None = None) -> bool:
        """Store +1 / -1 for a logged question (only from ``user``, a user_hash, when given); return whether stored."""
        sql, args = "UPDATE queries SET feedback = ? WHERE id = ?", [1 if value > 0 else -1, query_id]
        if user is not None:
            sql, args = sql + " AND user = ?", args + [user]
        with self._lock:
            cur = self.db.execute(sql, args)
            self.db.conn.commit()
            return cur.rowcount == 1

    def question(self, query_id: int) -> tuple[str, str] | None:
        """Return a logged question and the first citation of its answer ("" if none), or None."""
        with self._lock:
            rows = list(self.db.query("SELECT question, cited FROM queries WHERE id = ?", [query_id]))
        if not rows:
            return None
        cited = json.loads(rows[0]["cited"] or "[]")
        return rows[0]["question"], cited[0] if cited else ""

    def stats(self, now: dt.datetime | None = None, top: int = 5) -> dict:
        """Return questions per day and week, abstention rate, feedback counts and top questions."""
        now = now or dt.datetime.now()
        day, week = (now - dt.timedelta(days=1)).isoformat(), (now - dt.timedelta(days=7)).isoformat()
        with self._lock:
            rows = list(self.db.query("SELECT time, question, abstained, feedback FROM queries WHERE time >= ?", [week]))
        last_day = [r for r in rows if r["time"] >= day]
        return {"day": len(last_day), "week": len(rows),
                "abstention_rate": sum(r["abstained"] for r in rows) / len(rows) if rows else 0.0,
                "up": sum(1 for r in rows if r["feedback"] == 1), "down": sum(1 for r in rows if r["feedback"] == -1),
                "top": Counter(r["question"] for r in rows).most_common(top)}

    def unanswered(self, limit: int = 20) -> list[dict]:
        """Return the most recent questions the bot abstained on."""
        with self._lock:
            return list(self.db.query("SELECT time, channel, question FROM queries WHERE abstained = 1 "
                                      "ORDER BY id DESC LIMIT ?", [limit]))
