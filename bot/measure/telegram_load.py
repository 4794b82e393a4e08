"""Load benchmark for the Telegram channel: simulated users ask through the Bot API stand-in while an admin
runs /reindex in the middle; prints messages lost and reply latency (p50 / p95 / max).

    .venv/bin/python -m bot.measure.telegram_load [--users 100] [--questions 10] [--think 6 14] [--data-dir DIR]

Each user asks its questions one after another, waiting for the reply and then "thinking" a random time
between the two --think bounds (seconds). A question counts as lost when no reply reaches its chat within
--timeout seconds. Without --data-dir the index is built once in a temporary directory (about a minute).
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import queue
import random
import statistics
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

from bot import replies  # noqa: E402
from bot.answer import Answerer  # noqa: E402
from bot.querylog import QueryLog  # noqa: E402
from index.build import ensure_index  # noqa: E402
from index.embedding import Embedder  # noqa: E402
from bot.settings import Settings, replace  # noqa: E402
from tests.telegram_standin import BotApiStandIn, BotThread  # noqa: E402

TOKEN = "5550009999:AAH-load-benchmark-token"
ADMIN_ID = 424242999
DEV_SET = REPO.parent / "shared" / "eval" / "dev.jsonl"
FALLBACK = ["市六院7月那次组织献血，一共献了多少毫升？", "家里老人卧床，能约护士上门吗？", "哪些医院组织过献血？",
            "7月12日那天有哪些活动？", "卧龙区的医养服务中心晚上有没有医护看着老人？", "最近一期有哪些内容？"]


def questions() -> list[str]:
    """Return the dev-set questions if the shared folder is there, else a few built-in ones."""
    if DEV_SET.exists():
        return [json.loads(line)["q"] for line in DEV_SET.read_text(encoding="utf-8").splitlines() if line.strip()]
    return FALLBACK


def pick(pool: list[str], n: int) -> list[str]:
    """Return n questions in random order, repeating the pool if it is shorter."""
    return (random.sample(pool, len(pool)) * (n // len(pool) + 1))[:n]


class Replies:
    """Per-chat queues of the bot's sendMessage calls, fed by the stand-in as they arrive."""

    def __init__(self, api: BotApiStandIn):
        self.queues: dict[int, queue.Queue] = {}
        self.reindex_done = threading.Event()
        self.reindex_done_at = 0.0
        api.listeners.append(self.on_call)

    def on_call(self, call) -> None:
        if call.method == "sendMessage" and call.params["chat_id"] in self.queues:
            self.queues[call.params["chat_id"]].put(call)
        elif call.method == "editMessageText" and call.params["text"].startswith("索引重建完成"):
            self.reindex_done_at = call.at
            self.reindex_done.set()


def simulate_user(api: BotApiStandIn, box: Replies, user_id: int, asks: list[str], think: tuple[float, float],
                  timeout: float, results: list) -> None:
    user = api.user(user_id)
    inbox = box.queues[user_id]
    time.sleep(random.uniform(0, think[1]))                        # users arrive spread out
    for text in asks:
        sent = time.monotonic()
        api.message(user, text)
        try:
            reply = inbox.get(timeout=timeout)
            results.append((reply.at - sent, reply.params["text"] == replies.TG_RATE_LIMITED, sent))
        except queue.Empty:
            results.append((None, False, sent))
        time.sleep(random.uniform(*think))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--questions", type=int, default=10)
    parser.add_argument("--think", type=float, nargs=2, default=(6.0, 14.0), metavar=("MIN", "MAX"))
    parser.add_argument("--timeout", type=float, default=30.0)
    parser.add_argument("--data-dir", type=Path, default=None)
    args = parser.parse_args()
    random.seed(7)
    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="tg-load-")) / "data"
    settings = replace(Settings(), data={"dir": str(data_dir)})
    started = time.monotonic()
    embedder = Embedder(settings.embedding)
    ensure_index(settings.index, embedder)
    answerer = Answerer(settings, embedder, today=dt.date(2025, 9, 20))
    print(f"index ready in {time.monotonic() - started:.1f} s ({data_dir})")
    querylog = QueryLog(Path(tempfile.mkdtemp(prefix="tg-load-log-")), b"bench-salt")
    pool = questions()
    with BotApiStandIn(TOKEN) as api:
        box = Replies(api)
        settings = replace(settings, telegram={"admins": (ADMIN_ID,), "base_url": api.base_url,
                                               "base_file_url": api.base_file_url})
        with BotThread(settings, answerer, querylog, TOKEN) as bot:
            bot.started(api, "getUpdates")
            results: list = []
            users = [threading.Thread(target=simulate_user, daemon=True,
                                      args=(api, box, 800000000 + n, pick(pool, args.questions), args.think, args.timeout,
                                            results))
                     for n in range(args.users)]
            for n in range(args.users):
                box.queues[800000000 + n] = queue.Queue()
            t0 = time.monotonic()
            for u in users:
                u.start()
            expected = args.users * args.questions
            while len(results) < expected // 2:                  # the admin rebuilds half way through
                time.sleep(0.1)
            reindex_at = time.monotonic()
            api.message(api.user(ADMIN_ID, "Admin"), "/reindex")
            for u in users:
                u.join()
            box.reindex_done.wait(120)
            reindex_s = box.reindex_done_at - reindex_at
            wall = time.monotonic() - t0
    answered = sorted(r[0] for r in results if r[0] is not None)
    during = sum(1 for r in results if r[0] is not None and reindex_at <= r[2] <= reindex_at + reindex_s)
    q = statistics.quantiles(answered, n=100) if len(answered) > 1 else [0.0] * 99
    print(f"users {args.users} x questions {args.questions} = {expected} questions in {wall:.0f} s "
          f"({expected / wall:.1f} questions/s)")
    print(f"replies {len(answered)}, messages lost {expected - len(answered)}, "
          f"rate-limited replies {sum(1 for r in results if r[1])}")
    print(f"reply latency p50 {q[49] * 1000:.0f} ms, p95 {q[94] * 1000:.0f} ms, max {answered[-1] * 1000:.0f} ms")
    print(f"/reindex finished: {box.reindex_done.is_set()} after {reindex_s:.1f} s; "
          f"{during} questions asked meanwhile")


if __name__ == "__main__":
    main()
