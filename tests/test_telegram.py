"""The Telegram channel end to end: the real PTB Application over HTTP against a local Bot API stand-in,
the real Answerer over the real index."""
from __future__ import annotations

import html
import logging
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from bot import replies
from bot.answer import Answerer
from bot.querylog import QueryLog
from bot.followup import is_follow_up
from bot.channels.telegram_format import QuestionLimiter, split_html
from index.generations import Generations
from tests.conftest import BULLETINS, TODAY, settings_for
from tests.telegram_standin import BotApiStandIn, BotThread, visible_text

TOKEN = "5550001234:AAH-standin-token-Zq8xTelegramTest"
ADMIN = BotApiStandIn.user(424242001, "Admin管理员")
SECRET_ENV = "BULLETIN_BOT_TELEGRAM_SECRET"
BLOOD = "市六院7月那次组织献血，一共献了多少毫升？"
BLOOD_CITATION = "2025-07-15 · 南阳市第六人民医院 · 南阳市第六人民医院组织无偿献血活动"


def bot_settings(data_dir: Path, api: BotApiStandIn, **telegram):
    values = {"admins": (ADMIN["id"],), "base_url": api.base_url, "base_file_url": api.base_file_url,
              "questions_per_minute": 5, "notify_admins_on_error": True, **telegram}
    return settings_for(data_dir, telegram=values)


@contextmanager
def telegram_bot(data_dir: Path, answerer: Answerer, querylog: QueryLog, **telegram):
    """Yield a stand-in Bot API with the bot polling it."""
    with BotApiStandIn(TOKEN) as api:
        with BotThread(bot_settings(data_dir, api, **telegram), answerer, querylog, TOKEN) as bot:
            bot.started(api, "getUpdates")
            yield api
        assert bot.error is None


@pytest.fixture(scope="module")
def querylog(tmp_path_factory) -> QueryLog:
    return QueryLog(tmp_path_factory.mktemp("querylog"), b"test-salt")


@pytest.fixture(scope="module")
def api(built_data_dir, answerer, querylog):
    """One bot over the shared (read-only) index for the resident and staff tests."""
    with telegram_bot(built_data_dir, answerer, querylog) as api:
        yield api


_next_user = iter(range(610000001, 610009999))


def new_user(name: str = "居民") -> dict:
    """Return a user no other test has used (so per-user limits and chat context start fresh)."""
    return BotApiStandIn.user(next(_next_user), name)


def ask(api: BotApiStandIn, user: dict, text: str, chat: dict | None = None, **extra):
    """Send a message and return the bot's (last part of its) reply to that chat."""
    mark = api.mark()
    message = api.message(user, text, chat, **extra)
    chat_id = message["chat"]["id"]
    return api.wait_for("sendMessage", lambda p: p["chat_id"] == chat_id, after=mark)[-1]


def buttons(call) -> list[dict]:
    return [b for row in call.params.get("reply_markup", {}).get("inline_keyboard", []) for b in row]


def shown(call) -> str:
    return visible_text(call.params["text"], call.params.get("parse_mode"))


# -- residents ------------------------------------------------------------------------------------

def test_start_offers_example_questions_that_ask_when_pressed(api):
    user = new_user()
    welcome = ask(api, user, "/start")
    examples = buttons(welcome)
    assert [b["text"] for b in examples] == list(replies.TG_EXAMPLES)
    mark = api.mark()
    api.callback(user, api.sent_message(welcome), examples[0]["callback_data"])
    answer = api.wait_for("sendMessage", lambda p: p["chat_id"] == user["id"], after=mark)[0]
    assert "21200" in shown(answer)
    assert api.calls_of("answerCallbackQuery")
    assert replies.TG_HELP.splitlines()[0] in shown(ask(api, user, "/help"))


def test_question_answered_with_citation_buttons_typing_and_log(api, querylog):
    user = new_user()
    mark = api.mark()
    answer = ask(api, user, BLOOD)
    text = shown(answer)
    assert "21200" in text and BLOOD_CITATION in text
    assert answer.params["parse_mode"] == "HTML"
    labels = [b["text"] for b in buttons(answer)]
    assert labels == [replies.TG_SOURCE_BUTTON, replies.TG_FEEDBACK_UP, replies.TG_FEEDBACK_DOWN, replies.FOLLOW_BUTTON]
    typing = api.calls_of("sendChatAction", chat_id=user["id"], action="typing")
    assert typing and typing[0].at <= answer.at and api.calls.index(typing[0]) >= mark
    row = list(querylog.db.query("SELECT * FROM queries WHERE question = ? ORDER BY id DESC", [BLOOD]))[0]
    assert row["chat_type"] == "private" and row["abstained"] == 0
    assert "南阳市第六人民医院组织无偿献血活动" in row["cited"]
    assert row["user"] == querylog.user_hash("telegram", user["id"]) and str(user["id"]) not in row["user"]
    assert row["latency_ms"] > 0


def test_follow_up_is_read_against_the_cited_article_until_new(api):
    user = new_user()
    ask(api, user, BLOOD)
    follow = shown(ask(api, user, "那一共有多少人参加？"))
    assert "71名" in follow and BLOOD_CITATION in follow
    assert shown(ask(api, user, "/new")) == replies.TG_NEW_TOPIC
    assert BLOOD_CITATION not in shown(ask(api, user, "那一共有多少人参加？"))


def test_source_button_shows_the_full_article_and_feedback_is_logged(api, querylog):
    user = new_user()
    answer = ask(api, user, BLOOD)
    source, up, down, _follow = buttons(answer)
    mark = api.mark()
    api.callback(user, api.sent_message(answer), source["callback_data"])
    article = api.wait_for("sendMessage", lambda p: p["chat_id"] == user["id"], after=mark)[0]
    text = shown(article)
    assert text.startswith("2025-07-15 期 · 南阳市第六人民医院\n南阳市第六人民医院组织无偿献血活动")
    assert "总献血量达21200毫升" in text.replace("\n", "") and len(text) > len(shown(answer)) // 2
    mark = api.mark()
    api.callback(user, api.sent_message(answer), down["callback_data"])
    thanks = api.wait_for("answerCallbackQuery", lambda p: p.get("text") == replies.TG_FEEDBACK_THANKS, after=mark)
    assert thanks
    query_id = int(down["callback_data"].split(":")[1])
    assert querylog.db["queries"].get(query_id)["feedback"] == -1
    other = new_user()                                 # in a group anyone sees the buttons: only the asker counts
    mark = api.mark()
    api.callback(other, api.sent_message(answer), up["callback_data"])
    assert api.wait_for("answerCallbackQuery", lambda p: p.get("text") == replies.TG_FEEDBACK_UNKNOWN, after=mark)
    assert querylog.db["queries"].get(query_id)["feedback"] == -1


def test_split_html_keeps_every_part_within_the_limit_and_escaped():
    text = "\n".join(f"第{i}行 <b>&</b> " + "献血" * (i % 50) for i in range(400)) + "\n" + "长" * 9000
    parts = split_html(text)
    assert len(parts) > 3
    for part in parts:
        assert len(visible_text(part, "HTML").encode("utf-16-le")) // 2 <= 4096
    assert "".join(html.unescape(p) for p in parts).replace("\n", "") == text.replace("\n", "")


def test_follow_up_detection_and_question_limiter():
    assert is_follow_up("那在哪报名？") and is_follow_up("要钱吗？") and is_follow_up("那一共有多少人参加？")
    assert not is_follow_up(BLOOD) and not is_follow_up("哪些医院组织过献血？")
    limiter = QuestionLimiter(2)
    assert limiter.allow("u", 0) and limiter.allow("u", 1) and not limiter.allow("u", 2) and limiter.allow("u", 61)


def test_oversized_and_non_text_messages_get_a_hint(api):
    user = new_user()
    assert shown(ask(api, user, "献血" * 300)) == replies.TG_TOO_LONG.format(n=600, limit=500)
    sticker = {"file_id": "st1", "file_unique_id": "ust1", "type": "regular", "width": 512, "height": 512,
               "is_animated": False, "is_video": False}
    assert shown(ask(api, user, None, sticker=sticker)) == replies.TG_NOT_TEXT
    photo = [{"file_id": "ph1", "file_unique_id": "uph1", "width": 90, "height": 90}]
    assert shown(ask(api, user, None, photo=photo)) == replies.TG_NOT_TEXT
    doc = api.add_file("notadmin1", "2025-08-01.txt", b"whatever")
    assert shown(ask(api, user, None, document=doc)) == replies.TG_DOCUMENT_NOT_ADMIN
    assert not api.calls_of("getFile", file_id="notadmin1")


def test_questions_per_minute_limit_is_per_user(api):
    user, other = new_user(), new_user()
    for _ in range(5):
        assert replies.TG_RATE_LIMITED not in shown(ask(api, user, "哪些医院组织过献血？"))
    assert shown(ask(api, user, "哪些医院组织过献血？")) == replies.TG_RATE_LIMITED
    assert shown(ask(api, other, "哪些医院组织过献血？")) != replies.TG_RATE_LIMITED


def test_group_answers_only_when_mentioned_or_replied_to(api):
    user, group = new_user(), BotApiStandIn.group_chat(-100777)
    api.message(user, BLOOD, group)                                       # not addressed: ignored
    api.message(user, None, group, sticker={"file_id": "s", "file_unique_id": "s", "type": "regular",
                                            "width": 1, "height": 1, "is_animated": False, "is_video": False})
    mentioned = api.new_message(user, f"@{api.me['username']} {BLOOD}", group)
    mark = api.mark()
    api.push(message=mentioned)
    reply = api.wait_for("sendMessage", lambda p: p["chat_id"] == group["id"], after=mark)[0]
    assert "21200" in shown(reply) and reply.params["reply_parameters"]["message_id"] == mentioned["message_id"]
    follow = ask(api, user, "那一共有多少人参加？", group, reply_to_message=api.sent_message(reply))
    assert "71名" in shown(follow)
    time.sleep(0.5)
    assert len(api.calls_of("sendMessage", chat_id=group["id"])) == 2


# -- staff ----------------------------------------------------------------------------------------

def test_search_lists_dated_articles_in_pages(api):
    user = new_user()
    first = ask(api, user, "/search 健康")
    text = shown(first)
    assert "（第 1/" in text and text.count("\n") == 5 and "2025-07-24《" in text
    (next_page,) = buttons(first)
    assert next_page["text"] == replies.TG_NEXT_PAGE
    mark = api.mark()
    api.callback(user, api.sent_message(first), next_page["callback_data"])
    edited = api.wait_for("editMessageText", after=mark)[0]
    assert "（第 2/" in shown(edited) and "6. " in shown(edited)
    assert replies.TG_PREV_PAGE in [b["text"] for b in buttons(edited)]
    none = shown(ask(api, user, "/search 不存在的关键词xyz"))
    assert none == replies.TG_SEARCH_NONE.format(query="不存在的关键词xyz")
    assert shown(ask(api, user, "/search")) == replies.TG_SEARCH_USAGE


def test_latest_and_issues(api):
    user = new_user()
    latest = shown(ask(api, user, "/latest"))
    assert latest.startswith("最新一期：2025-07-24，共 8 篇：")
    issues = shown(ask(api, user, "/issues"))
    assert issues.startswith("已收录 5 期简报：") and "2024-09-28" in issues


def test_admin_commands_are_refused_to_residents(api, built_data_dir):
    user = new_user()
    before = Generations(built_data_dir).current()
    for command in ("/reindex", "/stats", "/unanswered"):
        assert shown(ask(api, user, command)) == replies.TG_NOT_ADMIN
    assert Generations(built_data_dir).current() == before


def test_error_handler_apologises_and_notifies_admins(api, caplog):
    user = new_user()
    api.fail_next("sendMessage", "Bad Request: simulated failure")
    mark = api.mark()
    api.message(user, BLOOD)
    apology = api.wait_for("sendMessage", lambda p: p["chat_id"] == user["id"], after=mark, count=2)[-1]
    assert shown(apology) == replies.TG_SORRY
    notice = api.wait_for("sendMessage", lambda p: p["chat_id"] == ADMIN["id"], after=mark)[0]
    assert shown(notice) == replies.TG_ADMIN_ERROR_NOTICE.format(error="BadRequest")
    failed = [r for r in caplog.records if r.name == "bot.channels.telegram_handlers" and r.levelno == logging.ERROR]
    assert failed and failed[-1].exc_info is not None


# -- admins (each on a private copy of the index) -------------------------------------------------

@pytest.fixture
def own_answerer(data_dir, embedder):
    return Answerer(settings_for(data_dir), embedder, today=TODAY)


def new_issue() -> bytes:
    text = (BULLETINS / "2025-07-15.txt").read_text(encoding="utf-8")
    text = text.replace("2025 年 7 月 15 日", "2025 年 8 月 1 日", 1)
    fact = "理论课程 53 课时，实践课程 14 场，学员还在白河湿地公园开展了萤火虫夜跑义诊"
    assert "理论课程 53 课时，实践课程 14 场" in text
    return text.replace("理论课程 53 课时，实践课程 14 场", fact, 1).encode("utf-8")


def test_admin_upload_is_answerable_in_the_next_message(data_dir, own_answerer, tmp_path):
    question = "萤火虫夜跑义诊在哪里？"
    querylog = QueryLog(tmp_path / "log", b"salt")
    with telegram_bot(data_dir, own_answerer, querylog) as api:
        user = new_user()
        assert "白河湿地公园" not in shown(ask(api, user, question))
        doc = api.add_file("issue0801", "2025-08-01.txt", new_issue())
        assert shown(ask(api, user, None, document=doc)) == replies.TG_DOCUMENT_NOT_ADMIN
        assert not api.calls_of("getFile") and len(own_answerer.store.issues()) == 5
        mark = api.mark()
        api.message(ADMIN, None, document=doc)
        done = api.wait_for("sendMessage", lambda p: p["chat_id"] == ADMIN["id"], after=mark, count=2, timeout=60)
        assert shown(done[0]) == replies.TG_UPLOAD_RECEIVED.format(name="2025-08-01.txt")
        assert shown(done[1]).startswith("已收录：2025-08-01.txt (2025-08-01")
        assert api.calls_of("getFile", file_id="issue0801") and api.calls_of("download")
        answer = shown(ask(api, user, question))
        assert "白河湿地公园" in answer and "2025-08-01 · 南阳市第八人民医院" in answer
        assert shown(ask(api, user, "/latest")).startswith("最新一期：2025-08-01")
        bad = api.add_file("bad1", "notes.xlsx", b"PK\x03\x04")
        assert shown(ask(api, ADMIN, None, document=bad)) == replies.TG_UPLOAD_SUFFIX.format(name="notes.xlsx")


def test_admin_reindex_reports_progress_while_questions_are_answered(data_dir, own_answerer, tmp_path):
    querylog = QueryLog(tmp_path / "log", b"salt")
    before = Generations(data_dir).current()
    with telegram_bot(data_dir, own_answerer, querylog) as api:
        user = new_user()
        mark = api.mark()
        api.message(ADMIN, "/reindex")
        api.wait_for("sendMessage", lambda p: p["chat_id"] == ADMIN["id"], after=mark)
        answer = ask(api, user, BLOOD)
        edits = api.wait_for("editMessageText", lambda p: "索引重建完成" in p["text"], after=mark, timeout=120)
        assert "21200" in shown(answer) and answer.at < edits[0].at
        progress = [shown(c) for c in api.calls_of("editMessageText")]
        assert any("5/5" in t for t in progress) and progress[-1].startswith("索引重建完成：5 期、")
        assert Generations(data_dir).current() != before
        stats = shown(ask(api, ADMIN, "/stats"))
        assert stats.startswith("使用统计：\n近 24 小时提问 1 次") and BLOOD in stats
        ask(api, user, "南阳东站到郑州东的高铁一天有几趟？")
        unanswered = shown(ask(api, ADMIN, "/unanswered"))
        assert unanswered.startswith(replies.TG_UNANSWERED_HEADER) and "高铁" in unanswered


# -- operations -----------------------------------------------------------------------------------

def test_webhook_checks_the_secret_token(built_data_dir, answerer, tmp_path, monkeypatch):
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv(SECRET_ENV, "s3cret-webhook-token")
    querylog = QueryLog(tmp_path / "log", b"salt")
    with BotApiStandIn(TOKEN) as api:
        settings = bot_settings(built_data_dir, api, mode="webhook", webhook_url=f"http://127.0.0.1:{port}/tg-hook",
                                webhook_port=port)
        with BotThread(settings, answerer, querylog, TOKEN) as bot:
            hook = bot.started(api, "setWebhook")
            assert hook["url"] == f"http://127.0.0.1:{port}/tg-hook" and hook["secret_token"] == "s3cret-webhook-token"
            time.sleep(0.3)
            user = new_user()
            message = api.new_message(user, BLOOD)
            assert api.post_to_webhook({"message": message}, secret="wrong") == 403
            assert api.post_to_webhook({"message": message}, secret=None) == 403
            mark = api.mark()
            assert api.post_to_webhook({"message": message}, secret="s3cret-webhook-token") == 200
            reply = api.wait_for("sendMessage", lambda p: p["chat_id"] == user["id"], after=mark)
            assert len(reply) == 1 and "21200" in shown(reply[0])
            time.sleep(0.3)
            assert len(api.calls_of("sendMessage", chat_id=user["id"])) == 1
            assert not api.calls_of("getUpdates")


def test_logs_hold_no_user_id_name_or_token(built_data_dir, answerer, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    user = BotApiStandIn.user(918273645, "Lihua李华")
    querylog = QueryLog(tmp_path / "log", b"salt")
    with telegram_bot(built_data_dir, answerer, querylog) as api:
        ask(api, user, "/start")
        answer = ask(api, user, BLOOD)
        ask(api, user, "那一共有多少人参加？")
        mark = api.mark()
        api.callback(user, api.sent_message(answer), buttons(answer)[2]["callback_data"])
        api.wait_for("answerCallbackQuery", after=mark)
        ask(api, user, "/search 献血")
        ask(api, user, "/stats")
        api.fail_next("sendMessage")
        mark = api.mark()
        api.message(user, "哪些医院组织过献血？")
        api.wait_for("sendMessage", lambda p: p["chat_id"] == user["id"], after=mark, count=2)
    logged = caplog.text + "".join(str(r.args) for r in caplog.records)
    assert "answered in" in logged and "Traceback" in logged          # the capture did see the conversation
    for secret in (str(user["id"]), user["first_name"], TOKEN, TOKEN.split(":")[1]):
        assert secret not in logged
