"""Abuse and odd input on the channels, through the real handlers: every update and message type,
a flood from one user, a hostile upload name."""
from __future__ import annotations

import time
import uuid

import pytest

from bot import replies
from bot.answer import Answerer
from bot.querylog import QueryLog
from tests.conftest import BULLETINS, TODAY, settings_for
from tests.telegram_standin import BotApiStandIn
from tests.test_telegram import ADMIN, BLOOD, api, ask, new_user, querylog, shown, telegram_bot  # noqa: F401
from tests.test_wechat import OPENID, wechat  # noqa: F401  (the fixture)

STICKER = {"file_id": "s1", "file_unique_id": "us1", "type": "regular", "width": 512, "height": 512,
           "is_animated": False, "is_video": False}
PHOTO = [{"file_id": "p1", "file_unique_id": "up1", "width": 90, "height": 90}]
MESSAGE_KINDS = {
    "sticker": {"sticker": STICKER}, "photo": {"photo": PHOTO},
    "voice": {"voice": {"file_id": "v1", "file_unique_id": "uv1", "duration": 3}},
    "video": {"video": {"file_id": "d1", "file_unique_id": "ud1", "width": 1, "height": 1, "duration": 1}},
    "video_note": {"video_note": {"file_id": "n1", "file_unique_id": "un1", "length": 1, "duration": 1}},
    "audio": {"audio": {"file_id": "a1", "file_unique_id": "ua1", "duration": 1}},
    "animation": {"animation": {"file_id": "g1", "file_unique_id": "ug1", "width": 1, "height": 1, "duration": 1}},
    "location": {"location": {"latitude": 32.99, "longitude": 112.53}},
    "venue": {"venue": {"location": {"latitude": 32.99, "longitude": 112.53}, "title": "市六院", "address": "南阳"}},
    "contact": {"contact": {"phone_number": "+8613800000000", "first_name": "张"}},
    "dice": {"dice": {"emoji": "🎲", "value": 3}},
    "empty text": {"text": ""}, "whitespace text": {"text": "   \n "}, "unknown command": {"text": "/frobnicate"},
    "caption only": {"caption": "市六院献血？", "photo": PHOTO},
}


def _answered(api: BotApiStandIn, user: dict) -> None:
    """Ask the blood-drive question and wait for the answer (other replies may come first)."""
    mark = api.mark()
    api.message(user, BLOOD)
    api.wait_for("sendMessage", lambda p: p["chat_id"] == user["id"] and "21200" in p["text"], after=mark)


def _no_apology(api: BotApiStandIn) -> None:
    assert not [c for c in api.calls_of("sendMessage") if c.params.get("text") == replies.TG_SORRY]


@pytest.mark.parametrize("kind", sorted(MESSAGE_KINDS))
def test_every_message_kind_gets_a_hint_or_is_ignored_never_an_error(api, kind):
    user = new_user()
    mark = api.mark()
    extra = dict(MESSAGE_KINDS[kind])
    api.message(user, extra.pop("text", None), **extra)
    _answered(api, user)                            # the bot is still there and answers the next question
    replies_to_kind = [c for c in api.calls[mark:] if c.method == "sendMessage"
                       and c.params["chat_id"] == user["id"] and "21200" not in str(c.params.get("text"))]
    for call in replies_to_kind:                    # whatever it said about the odd message is one short line
        assert len(shown(call)) < 200
    _no_apology(api)


@pytest.mark.parametrize("update", [
    "edited_message", "channel_post", "edited_channel_post", "callback_garbage", "inline_query",
    "my_chat_member", "chat_join_request", "message_reaction", "new_chat_members"])
def test_every_other_update_type_is_handled_or_ignored(api, update):
    user = new_user()
    chat = BotApiStandIn.private_chat(user)
    message = api.new_message(user, "市六院献血多少毫升？")
    member = {"user": user, "status": "member"}
    pushed = {
        "edited_message": lambda: api.push(edited_message={**message, "edit_date": int(time.time())}),
        "channel_post": lambda: api.push(channel_post={**api.new_message(user, "献血", {"id": -1001, "type": "channel",
                                                                                       "title": "频道"}), "from": None}),
        "edited_channel_post": lambda: api.push(edited_channel_post={
            **api.new_message(user, "献血", {"id": -1001, "type": "channel", "title": "频道"}),
            "edit_date": int(time.time())}),
        "callback_garbage": lambda: api.callback(user, message, "no-such-button:☃"),
        "inline_query": lambda: api.push(inline_query={"id": "iq1", "from": user, "query": "献血", "offset": ""}),
        "my_chat_member": lambda: api.push(my_chat_member={"chat": chat, "from": user, "date": int(time.time()),
                                                           "old_chat_member": member,
                                                           "new_chat_member": {**member, "status": "kicked",
                                                                               "until_date": 0}}),
        "chat_join_request": lambda: api.push(chat_join_request={"chat": BotApiStandIn.group_chat(), "from": user,
                                                                 "user_chat_id": user["id"], "date": int(time.time())}),
        "message_reaction": lambda: api.push(message_reaction={"chat": chat, "message_id": 1, "date": int(time.time()),
                                                               "old_reaction": [], "new_reaction": [],
                                                               "user": user}),
        "new_chat_members": lambda: api.message(user, None, BotApiStandIn.group_chat(), new_chat_members=[user]),
    }
    pushed[update]()
    _answered(api, user)
    _no_apology(api)


def test_flood_from_one_user_is_limited_while_others_are_answered(api):
    flooder, neighbour = new_user("刷屏"), new_user("邻居")
    mark = api.mark()
    for i in range(30):
        api.message(flooder, f"市六院献血多少毫升？{i}")
    answer = ask(api, neighbour, BLOOD)
    assert "21200" in shown(answer)
    api.wait_for("sendMessage", lambda p: p["chat_id"] == flooder["id"], count=30, after=mark, timeout=180)
    to_flooder = [shown(c) for c in api.calls[mark:] if c.method == "sendMessage"
                  and c.params["chat_id"] == flooder["id"]]
    limited = [t for t in to_flooder if t == replies.TG_RATE_LIMITED]
    assert len(limited) >= 30 - 5                    # questions_per_minute is 5 in these tests
    assert len(to_flooder) - len(limited) <= 5


def test_upload_with_a_path_traversal_name_writes_nothing_outside_the_corpus(data_dir, embedder, tmp_path):
    answerer = Answerer(settings_for(data_dir), embedder, today=TODAY)
    before = {p for p in tmp_path.rglob("*")}
    content = (BULLETINS / "2025-07-15.txt").read_text(encoding="utf-8").replace(
        "2025 年 7 月 15 日", "2025 年 8 月 5 日").encode("utf-8")
    # the name climbs out of the upload folder (a temporary folder in the system temp dir) into tmp_path
    escaped = tmp_path / f"evil-bulletin-{uuid.uuid4().hex}.txt"
    with telegram_bot(data_dir, answerer, QueryLog(tmp_path / "log", b"s")) as api:
        doc = api.add_file("evil", "../" * 12 + str(escaped).lstrip("/"), content)
        mark = api.mark()
        api.message(ADMIN, None, document=doc)
        done = api.wait_for("sendMessage", lambda p: "已收录" in p["text"] or "未收录" in p["text"], after=mark,
                            timeout=120)
    assert "2025-08-05" in shown(done[-1])
    assert (data_dir / "bulletins" / "2025-08-05.txt").exists()
    created = {p for p in tmp_path.rglob("*")} - before
    assert not escaped.exists()
    assert all(p.is_relative_to(data_dir) or p.is_relative_to(tmp_path / "log") for p in created)
    assert not any("evil-bulletin" in p.name for p in created)


WECHAT_KINDS = {
    "image": "<PicUrl><![CDATA[http://x/p.jpg]]></PicUrl><MediaId><![CDATA[m]]></MediaId>",
    "voice": "<MediaId><![CDATA[m]]></MediaId><Format><![CDATA[amr]]></Format>",
    "video": "<MediaId><![CDATA[m]]></MediaId><ThumbMediaId><![CDATA[t]]></ThumbMediaId>",
    "shortvideo": "<MediaId><![CDATA[m]]></MediaId><ThumbMediaId><![CDATA[t]]></ThumbMediaId>",
    "location": "<Location_X>32.99</Location_X><Location_Y>112.53</Location_Y><Scale>15</Scale>"
                "<Label><![CDATA[南阳]]></Label>",
    "link": "<Title><![CDATA[t]]></Title><Description><![CDATA[d]]></Description><Url><![CDATA[http://x]]></Url>",
    "file": "<Title><![CDATA[a.pdf]]></Title><FileKey><![CDATA[k]]></FileKey>",
    "miniprogrampage": "<Title><![CDATA[t]]></Title><AppId><![CDATA[a]]></AppId>",
    "unknownkind": "<Whatever><![CDATA[?]]></Whatever>",
}
WECHAT_EVENTS = ["subscribe", "unsubscribe", "CLICK", "VIEW", "SCAN", "LOCATION", "TEMPLATESENDJOBFINISH", "odd"]


def _xml(kind: str, body: str, msg_id: int | None) -> str:
    mid = f"<MsgId>{msg_id}</MsgId>" if msg_id else ""
    return (f"<xml><ToUserName><![CDATA[gh_bulletin]]></ToUserName><FromUserName><![CDATA[{OPENID}]]></FromUserName>"
            f"<CreateTime>{int(time.time())}</CreateTime><MsgType><![CDATA[{kind}]]></MsgType>{body}{mid}</xml>")


@pytest.mark.parametrize("kind", sorted(WECHAT_KINDS))
def test_every_wechat_message_type_gets_a_reply_or_success(wechat, kind):
    servers = wechat()
    response = servers.post(_xml(kind, WECHAT_KINDS[kind], 88000 + len(kind)))
    assert response.status_code == 200
    body = servers.content(response.text)
    assert body == "success" or 0 < len(body) < 200


@pytest.mark.parametrize("event", WECHAT_EVENTS)
def test_every_wechat_event_gets_a_reply_or_success(wechat, event):
    servers = wechat(safe=True)
    response = servers.post(_xml("event", f"<Event><![CDATA[{event}]]></Event><EventKey><![CDATA[k]]></EventKey>",
                                 None))
    assert response.status_code == 200
    body = servers.content(response.text)
    welcome = replies.WECHAT_WELCOME.format(examples="\n".join(
        replies.WECHAT_EXAMPLE_LINE.format(question=q) for q in replies.EXAMPLE_QUESTIONS))
    assert body == (welcome if event == "subscribe" else "success")


@pytest.mark.parametrize("junk", [b"", b"not xml at all", b"<xml><MsgType>text</MsgType>", "<xml>\u0000</xml>".encode(),
                                  b"<!DOCTYPE x [<!ENTITY a 'aaaaaaaaaa'>]><xml>&a;&a;&a;</xml>"])
def test_malformed_wechat_bodies_are_refused_without_an_answer(wechat, junk):
    servers = wechat()
    response = servers.http.post(servers.path, params=servers.params(), content=junk)
    assert response.status_code == 400
    assert "Traceback" not in response.text and "21200" not in response.text
    assert servers.logged() == []
