"""Following a topic: the Telegram commands and notices end to end against the Bot API stand-in, the Atom
feeds parsed back by feedparser, WeChat's keywords and template messages against the WeChat stand-in, and
the matcher on the real index (the blood station union's events are not blood drives)."""
from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
import subprocess
import sys
import time

import feedparser
import httpx
import pytest

from bot import replies
from bot.answer import Answerer
from bot.follow.commands import Following
from bot.channels.wechat import wechat_command
from bot.follow.match import TopicMatcher, question_topic
from bot.channels.notify import Notifier
from bot.follow.store import FOLLOWS_DB, FollowStore
from bot.querylog import QueryLog
from corpus.errors import ConfigError
from index.archive import backup, restore
from index.build import index_identity, ingest_files
from bot.settings import FollowSettings, parse_settings
from tests.conftest import app_for, engine_for, REPO, TODAY, settings_for
from tests.test_telegram import ADMIN, BLOOD, ask, buttons, new_user, shown, telegram_bot
from tests.test_wechat import APP_ID, ENV, OPENID, SECRET, TOKEN, WeChatServers, text_xml
from tests.wechat_standin import WeChatStandIn, serve_app

ISSUE = REPO / "tests" / "data" / "follow-issue-2025-08-05.txt"
DRIVE = "2025-08-05 · 南阳市第二人民医院 · 南阳市第二人民医院组织职工无偿献血"
UNION = "南阳市中心血站工会举办职工趣味运动会"
SECOND_DRIVE = ("南阳市第一人民医院开展无偿献血活动。8 月 4 日，南阳市第一人民医院组织职工参加无偿献血，"
                "共有 52 人成功献血，献血量 17600 毫升。\n（南阳市第一人民医院）\n")


def corrected_issue() -> bytes:
    """The same issue with one more article (a second blood drive): what an admin sends to replace it."""
    text = ISSUE.read_text(encoding="utf-8")
    return (text + "\n" + SECOND_DRIVE).encode("utf-8")


@pytest.fixture(scope="module")
def issue_data_dir(built_data_dir, embedder, tmp_path_factory):
    """The bundled issues plus the test issue (a blood drive and the blood station union's sports day)."""
    data = tmp_path_factory.mktemp("follow") / "data"
    shutil.copytree(built_data_dir, data, symlinks=True)
    report = ingest_files(settings_for(data), embedder, [ISSUE])
    assert report.added
    return data


@pytest.fixture(scope="module")
def issue_answerer(issue_data_dir, embedder):
    return Answerer(settings_for(issue_data_dir), embedder, today=TODAY)


# -- Telegram, end to end -------------------------------------------------------------------------

def test_follow_notifies_once_per_issue_through_the_bot_api(data_dir, embedder, tmp_path):
    answerer = Answerer(settings_for(data_dir), embedder, today=TODAY)
    querylog = QueryLog(tmp_path / "log", b"salt")
    with telegram_bot(data_dir, answerer, querylog) as api:
        user, blocked = new_user(), new_user()
        followed = shown(ask(api, user, "/follow 献血"))
        assert followed.startswith(replies.FOLLOW_ADDED.format(topic="献血")) and "2025-07-15" in followed
        answer = ask(api, user, BLOOD)                                 # the button follows the question's subject
        (follow_button,) = [b for b in buttons(answer) if b["text"] == replies.FOLLOW_BUTTON]
        mark = api.mark()
        api.callback(user, api.sent_message(answer), follow_button["callback_data"])
        again = api.wait_for("sendMessage", lambda p: p["chat_id"] == user["id"], after=mark)[0]
        assert shown(again) == replies.FOLLOW_DUPLICATE.format(topic="献血")
        ask(api, blocked, "/follow 无偿献血")
        api.blocked.add(blocked["id"])

        mark = api.mark()
        api.message(ADMIN, None, document=api.add_file("f0805", "2025-08-05.txt", ISSUE.read_bytes()))
        told = api.wait_for("sendMessage", lambda p: "已通知关注者" in p["text"], after=mark, timeout=120)[0]
        assert shown(told) == replies.FOLLOW_NOTIFIED.format(sent=1, dropped=1, failed=0)
        [notice] = api.wait_for("sendMessage", lambda p: p["chat_id"] == user["id"], after=mark)
        text = shown(notice)
        assert text.startswith(replies.FOLLOW_NOTICE_HEADER.format(topics="献血", date="2025-08-05"))
        assert DRIVE in text and UNION not in text and text.count("〔") == 1
        store = FollowStore(data_dir, querylog.user_hash, FollowSettings())
        assert store.topics_of("telegram", blocked["id"]) == [] and store.topics_of("telegram", user["id"]) == ["献血"]

        mark = api.mark()                                              # the same file again: nothing new
        api.message(ADMIN, None, document=api.add_file("f0805b", "2025-08-05.txt", ISSUE.read_bytes()))
        api.wait_for("sendMessage", lambda p: p["chat_id"] == ADMIN["id"] and "无需更新" in p["text"], after=mark,
                     timeout=60)
        mark = api.mark()                                              # a corrected issue: only the new article
        api.message(ADMIN, None, document=api.add_file("f0805c", "2025-08-05.txt", corrected_issue()))
        [second] = api.wait_for("sendMessage", lambda p: p["chat_id"] == user["id"], after=mark, timeout=120)
        assert "南阳市第一人民医院开展无偿献血活动" in shown(second) and DRIVE not in shown(second)
        time.sleep(0.5)
        assert len([c for c in api.calls[mark:] if c.method == "sendMessage" and c.params["chat_id"] == user["id"]]) == 1

        assert shown(ask(api, user, "/following")) == "\n".join([replies.FOLLOWING_HEADER, "1. 献血"])
        assert shown(ask(api, ADMIN, "/stats")).endswith(replies.FOLLOW_STATS.format(followers=1, topics=1))
        assert shown(ask(api, user, "/unfollow 1")) == replies.UNFOLLOWED.format(topic="献血")
        assert shown(ask(api, user, "/following")) == replies.FOLLOWING_NONE


# -- commands and bad input -----------------------------------------------------------------------

def test_follow_commands_reject_bad_input(answerer, tmp_path):
    limits = FollowSettings(max_topics=2, max_topic_chars=8, commands_per_minute=7)
    store = FollowStore(tmp_path, lambda channel, user: f"{channel}-{user}-hashed", limits)
    following = Following(limits, store, TopicMatcher(answerer, limits))
    follow = lambda text: following.follow("telegram", 1, 1, text).text          # noqa: E731
    assert follow("   ") == replies.FOLLOW_EMPTY
    assert follow("献血" * 5) == replies.FOLLOW_TOO_LONG.format(n=10, limit=8)
    never = follow("马拉松比赛")
    assert never.startswith(replies.FOLLOW_ADDED.format(topic="马拉松比赛"))
    assert replies.FOLLOW_NEVER_MATCHED.format(topic="马拉松比赛") in never          # said, and still kept
    assert follow("義診　鎮平").startswith(replies.FOLLOW_ADDED.format(topic="义诊 镇平"))   # one script, one spacing
    assert follow("义诊 镇平") == replies.FOLLOW_DUPLICATE.format(topic="义诊 镇平")
    assert follow("献血") == replies.FOLLOW_TOO_MANY.format(limit=2)
    assert store.topics_of("telegram", 1) == ["马拉松比赛", "义诊 镇平"]
    assert following.unfollow("telegram", 1, "9") == replies.UNFOLLOW_BAD_NUMBER.format(n=9)
    assert follow("献血") == replies.FOLLOW_RATE_LIMITED                              # the 8th command in a minute
    assert following.following("telegram", 2) == replies.FOLLOWING_NONE
    assert following.unfollow("telegram", 2, "x") == replies.UNFOLLOW_USAGE
    rows = store.db.execute("SELECT * FROM topics").fetchall()
    assert {tuple(r.keys()) for r in rows} == {("id", "user", "channel", "chat", "topic", "created")}
    assert all(r["user"] == "telegram-1-hashed" for r in rows)


def test_follow_settings_are_validated():
    with pytest.raises(ConfigError, match="max_topics"):
        parse_settings({"follow": {"max_topics": 0}})
    with pytest.raises(ConfigError, match="min_coverage"):
        parse_settings({"follow": {"min_coverage": 1.5}})
    with pytest.raises(ConfigError, match="unknown key"):
        parse_settings({"follow": {"topics": 3}})
    with pytest.raises(ConfigError, match="public_url"):
        parse_settings({"follow": {"public_url": "example.org"}})


def test_wechat_follow_keywords_are_not_questions():
    assert wechat_command("关注 义诊 镇平") == ("follow", "义诊 镇平")
    assert wechat_command("取消关注 1") == ("unfollow", "1") and wechat_command("我的关注") == ("following", "")
    assert wechat_command("关注度最高的报道是哪篇？") is None and wechat_command("哪些医院组织过献血？") is None


# -- matching -------------------------------------------------------------------------------------

def test_matcher_takes_the_drive_not_the_union_event_and_honours_places(issue_answerer):
    matcher = TopicMatcher(issue_answerer)
    new = {i for i, a in issue_answerer.store.all_articles().items() if a.issue_key == "2025-08-05"}
    assert [m.citation() for m in matcher.match("献血", among=new)] == [DRIVE]
    everywhere = [m.article.title for m in matcher.match("献血")]
    assert "南阳市中心血站工会开展端午主题活动" not in everywhere and UNION not in everywhere
    assert len(everywhere) == 4
    assert [m.article.title for m in matcher.match("义诊 镇平")] == ["镇平县人民医院专家走进石佛寺镇开展义诊"]
    assert question_topic(issue_answerer, BLOOD, "2025-07-15 · 南阳市第六人民医院 · 南阳市第六人民医院组织无偿献血活动") \
        == "献血"


# -- web feeds ------------------------------------------------------------------------------------

def test_feeds_parse_and_list_matching_articles_newest_first(issue_data_dir, issue_answerer, tmp_path):
    settings = settings_for(issue_data_dir, follow={"feed_entries": 20})
    app = app_for(settings, engine_for(settings, issue_answerer, QueryLog(tmp_path / "log", b"salt")))
    with serve_app(app) as url, httpx.Client(base_url=url, timeout=60) as http:
        response = http.get("/feed.xml", params={"q": "献血"})
        assert response.status_code == 200 and response.headers["content-type"].startswith("application/atom+xml")
        feed = feedparser.parse(response.content)
        assert not feed.bozo and feed.version == "atom10" and "献血" in feed.feed.title
        titles = [e.title for e in feed.entries]
        assert titles[0] == "南阳市第二人民医院组织职工无偿献血" and len(titles) == 4 and UNION not in titles
        dates = [e.updated_parsed for e in feed.entries]
        assert dates == sorted(dates, reverse=True)
        assert all(e.link.startswith(url + "/api/article?date=") for e in feed.entries)
        article = http.get(feed.entries[0].link).json()
        assert article["title"] == titles[0] and article["date"] == "2025-08-05"

        everything = feedparser.parse(http.get("/feed.xml").content)
        assert not everything.bozo and len(everything.entries) == settings.follow.feed_entries
        assert everything.entries[0].title == "南阳市卫健体委部署夏季爱国卫生运动"          # the newest issue's lead
        days = [e.updated_parsed for e in everything.entries]
        assert days == sorted(days, reverse=True)
        place = feedparser.parse(http.get("/feed.xml?q=义诊+镇平").content)
        assert [e.title for e in place.entries] == ["镇平县人民医院专家走进石佛寺镇开展义诊"]
        assert http.get("/feed.xml", params={"q": "献" * 40}).status_code == 422
        page = http.get("/").text
        assert "/feed.xml" in page and replies.WEB_SUBSCRIBE_ALL in page
        moved = http.get("/feed.xml", params={"from": BLOOD})                # 订阅这个话题 under an answer
        assert moved.status_code == 303 and moved.headers["location"] == "/feed.xml?q=%E7%8C%AE%E8%A1%80"


# -- WeChat ---------------------------------------------------------------------------------------

@pytest.fixture
def wechat_follow(data_dir, embedder, tmp_path, monkeypatch):
    """The app with [wechat] enabled over a private index; returns (servers, settings, answerer, querylog)."""
    stack = contextlib.ExitStack()

    def start(template: str = ""):
        monkeypatch.setenv(ENV.token_env, TOKEN)
        monkeypatch.setenv(ENV.app_secret_env, SECRET)
        monkeypatch.delenv(ENV.aes_key_env, raising=False)
        standin = stack.enter_context(WeChatStandIn(APP_ID, SECRET))
        settings = settings_for(data_dir, wechat={"enabled": True, "app_id": APP_ID, "api_base_url": standin.base_url,
                                                  "reply_budget_s": 60.0},
                                follow={"wechat_template_id": template, "public_url": "https://bulletin.example.org"})
        answerer = Answerer(settings, embedder, today=TODAY)
        querylog = QueryLog(tmp_path / "log", b"test-salt")
        url = stack.enter_context(serve_app(app_for(settings, engine_for(settings, answerer, querylog))))
        servers = stack.enter_context(contextlib.closing(WeChatServers(url, settings.wechat.path, standin, querylog,
                                                                       safe=False)))
        return servers, settings, answerer, querylog

    yield start
    stack.close()


def test_wechat_follow_sends_a_template_message_for_a_new_issue(wechat_follow, embedder):
    servers, settings, answerer, querylog = wechat_follow(template="TPL-follow-1")
    reply = servers.send(text_xml("关注 献血", 9001))
    assert reply.startswith(replies.FOLLOW_ADDED.format(topic="献血")) and replies.WECHAT_FOLLOW_FOOTER in reply
    assert servers.send(text_xml("我的关注", 9002)) == "\n".join([replies.FOLLOWING_HEADER, "1. 献血"])
    assert "21200" in servers.send(text_xml(BLOOD, 9003))                 # questions are still answered

    engine = engine_for(settings, answerer, querylog)
    notifier = Notifier(settings.wechat, settings.follow, engine)
    before = engine.snapshot()                                           # what `bulletin-bot ingest` does
    assert ingest_files(settings, embedder, [ISSUE]).added
    delivery = asyncio.run(notifier.notify(before))
    assert (delivery.sent, delivery.dropped, delivery.failed) == (1, 0, 0)
    [template] = servers.standin.templates
    assert template["touser"] == OPENID and template["template_id"] == "TPL-follow-1"
    assert DRIVE in template["data"]["keyword1"]["value"] and UNION not in template["data"]["keyword1"]["value"]
    assert template["data"]["keyword2"]["value"] == "2025-08-05"
    assert template["url"] == "https://bulletin.example.org/feed.xml?q=%E7%8C%AE%E8%A1%80"
    assert servers.standin.messages == []
    assert servers.send(text_xml("取消关注 1", 9004)) == replies.UNFOLLOWED.format(topic="献血")


def test_wechat_follow_without_a_template_points_to_the_feed(wechat_follow):
    servers, *_ = wechat_follow()
    reply = servers.send(text_xml("关注 义诊 镇平", 9101))
    assert replies.FOLLOW_FEED.format(url="https://bulletin.example.org/feed.xml?q=%E4%B9%89%E8%AF%8A%20%E9%95%87%E5%B9%B3") \
        in reply
    assert servers.send(text_xml("关注", 9102)) == replies.FOLLOW_EMPTY


# -- the command line -----------------------------------------------------------------------------

def test_cli_ingest_tells_telegram_followers(data_dir, tmp_path, monkeypatch):
    from click.testing import CliRunner
    from bot.cli import cli
    from bot.engine import Engine
    from tests.telegram_standin import BotApiStandIn
    from tests.test_telegram import TOKEN as TG_TOKEN
    store = FollowStore(data_dir, Engine(settings_for(data_dir), workers=1).user_hash, FollowSettings())
    assert store.add("telegram", 5150, 5150, "献血") and store.add("telegram", 5151, 5151, "乒乓球")
    with BotApiStandIn(TG_TOKEN) as api:
        config = tmp_path / "bot.toml"
        config.write_text(f'[telegram]\nbase_url = "{api.base_url}"\n', encoding="utf-8")
        monkeypatch.setenv(settings_for(data_dir).telegram.token_env, TG_TOKEN)
        result = CliRunner().invoke(cli, ["--config", str(config), "--data-dir", str(data_dir), "--today", "2025-09-20",
                                          "ingest", str(ISSUE)], catch_exceptions=False)
        assert result.exit_code == 0 and "added     " in result.stdout
        assert replies.FOLLOW_NOTIFIED.format(sent=1, dropped=0, failed=0) in result.stdout
        [notice] = [c for c in api.calls if c.method == "sendMessage"]
        assert notice.params["chat_id"] == 5150 and DRIVE in notice.params["text"]
        assert TG_TOKEN not in result.output


# -- backup ---------------------------------------------------------------------------------------

def test_backup_and_restore_keep_the_followers(data_dir, embedder, tmp_path):
    store = FollowStore(data_dir, lambda channel, user: f"k-{user}", FollowSettings())
    assert store.add("telegram", 7, 7, "献血")
    store.close()
    backup(data_dir, tmp_path / "bb.tar.gz")
    target = tmp_path / "restored"
    restore(tmp_path / "bb.tar.gz", target, index_identity(settings_for(target), embedder))
    again = FollowStore(target, lambda channel, user: f"k-{user}", FollowSettings())
    assert (target / FOLLOWS_DB).exists() and again.topics_of("telegram", 7) == ["献血"]


# -- figures (minutes): `pytest -m slow` -----------------------------------------------------------

@pytest.mark.slow
def test_follow_eval_precision_and_recall_on_the_labelled_topics(issue_data_dir):
    """`bulletin-bot follow-eval`: the labelled topics over the bundled issues and the test issue."""
    out = subprocess.run([sys.executable, "-m", "bot", "--data-dir", str(issue_data_dir), "follow-eval",
                          str(REPO / "tests" / "data" / "follow_labels.jsonl")], capture_output=True, text=True,
                         cwd=REPO, timeout=1200)
    assert out.returncode == 0, out.stderr
    configured = re.search(r"thresholds [\d./]+: precision ([\d.]+)  recall ([\d.]+)", out.stdout)
    crossed = re.search(r"cross-validated .*: precision ([\d.]+)  recall ([\d.]+)", out.stdout)
    assert float(configured[1]) >= 0.9 and float(configured[2]) >= 0.9, out.stdout
    assert float(crossed[1]) >= 0.85 and float(crossed[2]) >= 0.85, out.stdout


@pytest.mark.slow
def test_follow_notify_benchmark_loses_nothing_within_the_flood_limit(built_data_dir):
    out = subprocess.run([sys.executable, "-m", "bot.measure.follow_notify", "--data-dir", str(built_data_dir)],
                         capture_output=True, text=True, cwd=REPO, timeout=1200)
    assert out.returncode == 0, out.stderr
    figures = dict(line.split(": ", 1) for line in out.stdout.splitlines() if ": " in line)
    assert figures["notices"] == "1000" and figures["lost"] == "0" and figures["duplicates"] == "0"
    assert float(figures["messages/s while sending"]) <= 30


def test_notices_refused_by_the_flood_limit_are_sent_again_not_lost(tmp_path):
    """A bot without PTB's limiter meets Telegram's 429 at once: every notice still arrives, once."""
    from telegram import Bot

    from bot.channels.notify import Notice, send_telegram
    from bot.engine import Engine
    from tests.telegram_standin import BotApiStandIn
    engine = Engine(settings_for(tmp_path), workers=1)
    chats = list(range(9100, 9112))
    notices = [Notice(f"k-{chat}", "telegram", str(chat), "2025-08-05", ["献血"]) for chat in chats]
    with BotApiStandIn("5550009999:AAH-flood-test", messages_per_s=4) as api:
        async def run():
            async with Bot("5550009999:AAH-flood-test", base_url=api.base_url) as bot:
                return await send_telegram(bot, engine, notices)
        delivery = asyncio.run(run())
        accepted = [c for c in api.calls_of("sendMessage") if c.params["chat_id"] in chats]
    assert api.throttled > 0                              # the limit was met ...
    assert delivery.sent == len(chats) and delivery.failed == 0 and delivery.dropped == 0   # ... and nothing lost
    assert len(accepted) == len(chats) + api.throttled    # each chat: one message through, plus refused tries
