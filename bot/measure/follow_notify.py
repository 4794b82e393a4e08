"""Notify benchmark: N followers of a topic, one new issue uploaded by an admin through the Bot API stand-in
(which enforces Telegram's flood limit of 30 messages a second); prints notices sent, lost, throttled and
the time from the upload to the last notice.

    .venv/bin/python -m bot.measure.follow_notify [--followers 1000] [--data-dir DIR]

Every follower follows 献血 (the test issue has one blood drive) and a few other topics, so each must get
exactly one notice. A follower counts as lost when no notice reaches its chat within --timeout seconds.
Without --data-dir the index is built once in a temporary directory (about a minute).
"""
from __future__ import annotations

import argparse
import datetime as dt
import random
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

from bot.answer import Answerer  # noqa: E402
from bot.follow.store import FollowStore  # noqa: E402
from bot.querylog import QueryLog  # noqa: E402
from index.build import ensure_index  # noqa: E402
from index.embedding import Embedder  # noqa: E402
from bot.settings import Settings, replace  # noqa: E402
from tests.telegram_standin import BotApiStandIn, BotThread  # noqa: E402
from index.paths import FOLLOWS_DB

TOKEN = "5550007777:AAH-follow-benchmark-token"
ADMIN_ID = 424242777
ISSUE = REPO / "tests" / "data" / "follow-issue-2025-08-05.txt"
OTHER_TOPICS = ["义诊 镇平", "游泳比赛", "家庭医生签约", "乒乓球", "医养结合", "爱国卫生运动", "马拉松比赛", "托育"]
TELEGRAM_PER_S = 30
FIRST_USER = 880000001


def run(followers: int, data_dir: Path, timeout: float) -> dict:
    settings = replace(Settings(), data={"dir": str(data_dir)})
    embedder = Embedder(settings.embedding)
    ensure_index(settings.index, embedder)
    answerer = Answerer(settings, embedder, today=dt.date(2025, 9, 20))
    querylog = QueryLog(data_dir, b"bench-salt")
    store = FollowStore(data_dir, querylog.user_hash, settings.follow)
    rng = random.Random(14)
    for n in range(followers):
        user = FIRST_USER + n
        for topic in ["献血", *rng.sample(OTHER_TOPICS, rng.randint(0, 3))]:
            store.add("telegram", user, user, topic)
    store.close()
    with BotApiStandIn(TOKEN, messages_per_s=TELEGRAM_PER_S) as api:
        tg = {"admins": (ADMIN_ID,), "base_url": api.base_url, "base_file_url": api.base_file_url}
        with BotThread(replace(settings, telegram=tg), answerer, querylog, TOKEN) as bot:
            bot.started(api, "getUpdates")
            chats = set(range(FIRST_USER, FIRST_USER + followers))
            mark = api.mark()
            started = time.monotonic()
            api.message(api.user(ADMIN_ID, "管理员"), None, document=api.add_file("bench", ISSUE.name, ISSUE.read_bytes()))
            api.wait_for("sendMessage", lambda p: "已通知关注者" in p["text"], after=mark, timeout=timeout)
            notices = [c for c in api.calls[mark:] if c.method == "sendMessage" and c.params["chat_id"] in chats
                       and "南阳市第二人民医院组织职工无偿献血" in c.params["text"]]
            first = min(c.at for c in notices) if notices else started
            last = max(c.at for c in notices) if notices else started
            per_chat = Counter(c.params["chat_id"] for c in notices)
            return {"followers": followers, "notices": len(notices), "lost": len(chats - set(per_chat)),
                    "duplicates": sum(n - 1 for n in per_chat.values()), "throttled (429)": api.throttled,
                    "upload to first notice s": round(first - started, 1), "sending s": round(last - first, 1),
                    "upload to last notice s": round(last - started, 1),
                    "messages/s while sending": round((len(notices) - 1) / (last - first), 1) if last > first else 0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--followers", type=int, default=1000)
    parser.add_argument("--data-dir", type=Path, default=None, help="A data directory with a built index (copied).")
    parser.add_argument("--timeout", type=float, default=600.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-follow-") as tmp:
        data = Path(tmp) / "data"
        if args.data_dir is not None:
            shutil.copytree(args.data_dir, data, symlinks=True)
            (data / FOLLOWS_DB).unlink(missing_ok=True)
        else:
            print("building the index of the bundled issues (about a minute) ...", file=sys.stderr)
        result = run(args.followers, data, args.timeout)
    for key, value in result.items():
        print(f"{key}: {value}")


if __name__ == "__main__":
    main()
