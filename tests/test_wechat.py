"""The WeChat webhook against the running app: requests signed (and encrypted) the way WeChat's servers do."""
from __future__ import annotations

import base64
import secrets
import contextlib
import logging
import re
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import xmltodict
from wechatpy.crypto import WeChatCrypto
from wechatpy.utils import WeChatSigner

from bot import replies
from bot.querylog import QueryLog
from bot.channels.wechat import split_reply
from corpus.errors import ConfigError
from bot.settings import WeChatSettings
from tests.conftest import app_for, engine_for, settings_for
from tests.wechat_standin import WeChatStandIn, serve_app

TOKEN, APP_ID, SECRET = "console-token-123", "wx5823bf96d3bd56c7", "app-secret-456"
AES_KEY = base64.b64encode(bytes(range(32))).decode().rstrip("=")      # 43 characters, as the console gives
OPENID = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"
BLOOD = "市六院7月那次组织献血，一共献了多少毫升？"
ENV = WeChatSettings()


def sign(*parts: str) -> str:
    """Sign the way WeChat does (wechatpy's signer: SHA-1 of the sorted parts)."""
    signer = WeChatSigner()
    signer.add_data(*parts)
    return signer.signature


def text_xml(content: str, msg_id: int, user: str = OPENID) -> str:
    return (f"<xml><ToUserName><![CDATA[gh_bulletin]]></ToUserName><FromUserName><![CDATA[{user}]]></FromUserName>"
            f"<CreateTime>{int(time.time())}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
            f"<Content><![CDATA[{content}]]></Content><MsgId>{msg_id}</MsgId></xml>")


def image_xml(msg_id: int) -> str:
    return (f"<xml><ToUserName><![CDATA[gh_bulletin]]></ToUserName><FromUserName><![CDATA[{OPENID}]]></FromUserName>"
            f"<CreateTime>{int(time.time())}</CreateTime><MsgType><![CDATA[image]]></MsgType>"
            f"<PicUrl><![CDATA[http://mmbiz.example/pic.jpg]]></PicUrl><MediaId><![CDATA[media_1]]></MediaId>"
            f"<MsgId>{msg_id}</MsgId></xml>")


def subscribe_xml() -> str:
    return (f"<xml><ToUserName><![CDATA[gh_bulletin]]></ToUserName><FromUserName><![CDATA[{OPENID}]]></FromUserName>"
            f"<CreateTime>{int(time.time())}</CreateTime><MsgType><![CDATA[event]]></MsgType>"
            f"<Event><![CDATA[subscribe]]></Event></xml>")


class WeChatServers:
    """What WeChat's servers do: sign each request, encrypt it in safe mode, read the passive reply."""

    def __init__(self, url: str, path: str, standin: WeChatStandIn, querylog: QueryLog, safe: bool):
        self.url, self.path, self.standin, self.querylog = url, path, standin, querylog
        self.crypto = WeChatCrypto(TOKEN, AES_KEY, APP_ID) if safe else None
        self.http = httpx.Client(base_url=url, timeout=60)

    def params(self, timestamp: str | None = None, nonce: str | None = None) -> dict:
        timestamp = timestamp or str(int(time.time()))
        nonce = nonce or str(secrets.randbelow(10**10))          # WeChat sends a fresh nonce with every request
        return {"signature": sign(TOKEN, timestamp, nonce), "timestamp": timestamp, "nonce": nonce, "openid": OPENID}

    def post(self, xml: str, params: dict | None = None) -> httpx.Response:
        params = params or self.params()
        body = xml
        if self.crypto is not None:
            envelope = xmltodict.parse(self.crypto.encrypt_message(xml, params["nonce"], params["timestamp"]))["xml"]
            params = {**params, "encrypt_type": "aes", "msg_signature": envelope["MsgSignature"]}
            body = f"<xml><ToUserName><![CDATA[gh_bulletin]]></ToUserName><Encrypt><![CDATA[{envelope['Encrypt']}]]>" \
                   f"</Encrypt></xml>"
        return self.http.post(self.path, params=params, content=body.encode("utf-8"))

    def send(self, xml: str) -> str:
        """Post a message; return the reply's Content, or the bare body ("success") when there is none."""
        response = self.post(xml)
        assert response.status_code == 200, response.text
        return self.content(response.text)

    def content(self, body: str) -> str:
        if not body.startswith("<xml"):
            return body
        if self.crypto is not None:
            envelope = xmltodict.parse(body)["xml"]
            body = self.crypto.decrypt_message(body, envelope["MsgSignature"], envelope["TimeStamp"], envelope["Nonce"])
        reply = xmltodict.parse(body)["xml"]
        assert (reply["ToUserName"], reply["MsgType"]) == (OPENID, "text")
        return reply["Content"]

    def close(self) -> None:
        self.http.close()

    def logged(self) -> list[dict]:
        return list(self.querylog.db.query("SELECT * FROM queries ORDER BY id"))


@pytest.fixture
def wechat(built_data_dir, answerer, tmp_path, monkeypatch):
    """Start the app with [wechat] enabled (and a WeChat API stand-in); return a WeChatServers talking to it."""
    stack = contextlib.ExitStack()

    def start(safe: bool = False, secret: bool = True, **config) -> WeChatServers:
        monkeypatch.setenv(ENV.token_env, TOKEN)
        for name, value in ((ENV.app_secret_env, SECRET if secret else None), (ENV.aes_key_env, AES_KEY if safe else None)):
            if value:
                monkeypatch.setenv(name, value)
            else:
                monkeypatch.delenv(name, raising=False)
        standin = stack.enter_context(WeChatStandIn(APP_ID, SECRET))
        settings = settings_for(built_data_dir, wechat={"enabled": True, "app_id": APP_ID,
                                                        "api_base_url": standin.base_url, **config})
        querylog = QueryLog(tmp_path / "log", b"test-salt")
        url = stack.enter_context(serve_app(app_for(settings, engine_for(settings, answerer, querylog))))
        servers = stack.enter_context(contextlib.closing(
            WeChatServers(url, settings.wechat.path, standin, querylog, safe)))
        servers.log_dir = tmp_path / "log"
        return servers

    yield start
    stack.close()


def test_wechat_verification_echoes_echostr(wechat):
    servers = wechat()
    response = servers.http.get("/wechat", params={**servers.params(), "echostr": "8374628374"})
    assert (response.status_code, response.text) == (200, "8374628374")


def test_wechat_verification_with_a_forged_signature_is_refused(wechat):
    servers = wechat()
    params = {**servers.params(), "echostr": "8374628374"}
    params["signature"] = sign("not-the-token", params["timestamp"], params["nonce"])
    response = servers.http.get("/wechat", params=params)
    assert response.status_code == 403 and "8374628374" not in response.text


def test_wechat_question_is_answered_passively_and_logged_without_the_openid(wechat, caplog):
    servers = wechat(reply_budget_s=60.0)        # generous: this test is about the passive path, not speed
    with caplog.at_level(logging.DEBUG):
        reply = servers.send(text_xml(BLOOD, 1001))
    assert "21200" in reply and replies.SOURCES_HEADER in reply
    assert servers.standin.messages == []
    rows = servers.logged()
    assert [(r["channel"], r["question"], r["abstained"]) for r in rows] == [("wechat", BLOOD, 0)]
    assert rows[0]["user"] == servers.querylog.user_hash("wechat", OPENID)
    servers.querylog.db.conn.commit()
    assert not any(OPENID.encode() in f.read_bytes() for f in servers.log_dir.iterdir())
    server_side = [r.getMessage() for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))]
    assert server_side and not any(OPENID in m for m in server_side)   # the test's own client may log its URL


def test_wechat_slow_answer_goes_out_as_a_customer_service_message(wechat):
    servers = wechat(reply_budget_s=0.01)
    assert servers.send(text_xml(BLOOD, 2001)) == replies.WECHAT_WORKING
    [message] = servers.standin.wait_for_messages(1)
    assert message["touser"] == OPENID and message["msgtype"] == "text"
    assert "21200" in message["text"]["content"]
    assert servers.send(text_xml("家里老人卧床，能约护士上门吗？", 2002)) == replies.WECHAT_WORKING
    assert len(servers.standin.wait_for_messages(2)) == 2
    assert servers.standin.token_requests == 1                    # the access token is cached
    assert len(servers.logged()) == 2


def test_wechat_retries_of_a_slow_question_are_answered_once(wechat):
    servers = wechat(reply_budget_s=0.01)
    first = servers.send(text_xml(BLOOD, 3001))
    retries = [servers.send(text_xml(BLOOD, 3001)) for _ in range(3)]
    assert first == replies.WECHAT_WORKING and retries == ["success"] * 3
    servers.standin.wait_for_messages(1)
    time.sleep(0.5)                                               # room for a duplicate to show up
    assert len(servers.standin.messages) == 1 and len(servers.logged()) == 1
    assert servers.send(text_xml(BLOOD, 3001)) == "success"      # a retry after delivery: still once


def test_wechat_concurrent_retries_share_one_passive_answer(wechat):
    servers = wechat(reply_budget_s=60.0)
    with ThreadPoolExecutor(3) as pool:
        replies_ = list(pool.map(lambda _: servers.send(text_xml(BLOOD, 4001)), range(3)))
    answered = [r for r in replies_ if "21200" in r]
    assert len(answered) == 1 and sorted(replies_).count("success") == 2
    assert len(servers.logged()) == 1 and servers.standin.messages == []


def test_wechat_forged_message_is_refused_and_not_answered(wechat):
    servers = wechat(reply_budget_s=60.0)
    params = servers.params()
    params["signature"] = "0" * 40
    assert servers.post(text_xml(BLOOD, 5001), params).status_code == 403
    assert servers.post(text_xml(BLOOD, 5002), {k: v for k, v in servers.params().items()
                                                if k != "signature"}).status_code == 403
    assert servers.logged() == [] and servers.standin.messages == []


def test_wechat_stale_timestamp_is_refused(wechat):
    servers = wechat(reply_budget_s=60.0)
    stale = servers.params(timestamp=str(int(time.time()) - 600))   # signed correctly, but 10 minutes old
    assert servers.post(text_xml(BLOOD, 6001), stale).status_code == 403
    future = servers.params(timestamp=str(int(time.time()) + 600))
    assert servers.post(text_xml(BLOOD, 6002), future).status_code == 403
    assert servers.logged() == []


def test_wechat_safe_mode_round_trip(wechat):
    servers = wechat(safe=True, reply_budget_s=60.0)
    response = servers.post(text_xml(BLOOD, 7001))
    assert response.status_code == 200 and "<Encrypt>" in response.text and "21200" not in response.text
    assert "21200" in servers.content(response.text)


def test_wechat_safe_mode_refuses_plaintext_and_bad_message_signatures(wechat):
    servers = wechat(safe=True, reply_budget_s=60.0)
    plain = servers.http.post("/wechat", params=servers.params(), content=text_xml(BLOOD, 7101).encode())
    assert plain.status_code == 403
    params = servers.params()
    envelope = xmltodict.parse(servers.crypto.encrypt_message(text_xml(BLOOD, 7102), params["nonce"],
                                                              params["timestamp"]))["xml"]
    body = f"<xml><Encrypt><![CDATA[{envelope['Encrypt']}]]></Encrypt></xml>"
    forged = servers.http.post("/wechat", params={**params, "msg_signature": "f" * 40}, content=body)
    assert forged.status_code == 403
    other_app = WeChatCrypto(TOKEN, AES_KEY, "wx0000000000000000")        # right key, wrong app id inside
    envelope = xmltodict.parse(other_app.encrypt_message(text_xml(BLOOD, 7103), params["nonce"],
                                                         params["timestamp"]))["xml"]
    wrong_app = servers.http.post("/wechat", params={**params, "msg_signature": envelope["MsgSignature"]},
                                  content=f"<xml><Encrypt><![CDATA[{envelope['Encrypt']}]]></Encrypt></xml>")
    assert wrong_app.status_code == 403 and servers.logged() == []


def test_wechat_image_gets_the_text_only_hint(wechat):
    servers = wechat()
    assert servers.send(image_xml(8001)) == replies.WECHAT_TEXT_ONLY
    assert servers.logged() == []


def test_wechat_subscribe_gets_the_welcome_with_example_questions(wechat):
    servers = wechat()
    welcome = servers.send(subscribe_xml())
    assert welcome.startswith(replies.WECHAT_WELCOME.split("\n")[0])
    assert all(q in welcome for q in replies.EXAMPLE_QUESTIONS)


def test_wechat_long_answer_is_cut_and_more_returns_the_rest(wechat, answerer):
    servers = wechat(reply_budget_s=60.0, max_reply_bytes=300)
    question = "哪些医院组织过献血？"
    full = answerer.answer(question).text
    assert len(full.encode()) > 600                               # the test needs at least three parts
    parts = [servers.send(text_xml(question, 9000))]
    msg_id = 9001
    while parts[-1].endswith(replies.WECHAT_MORE_HINT):
        parts.append(servers.send(text_xml(replies.WECHAT_MORE_COMMAND, msg_id)))
        msg_id += 1
        assert msg_id < 9100
    assert len(parts) >= 3 and all(len(p.encode()) <= 300 for p in parts)
    joined = "".join(p.removesuffix(replies.WECHAT_MORE_HINT) for p in parts)
    assert re.sub(r"\s", "", joined) == re.sub(r"\s", "", full)
    assert servers.send(text_xml(replies.WECHAT_MORE_COMMAND, msg_id)) == replies.WECHAT_NO_MORE
    assert len(servers.logged()) == 1                             # 更多 is not a question


def test_wechat_without_customer_service_keeps_a_late_answer_for_more(wechat):
    servers = wechat(secret=False, reply_budget_s=0.01)
    assert servers.send(text_xml(BLOOD, 9501)) == replies.WECHAT_WORKING_ASK_MORE
    deadline, msg_id = time.monotonic() + 60, 9502
    while (reply := servers.send(text_xml(replies.WECHAT_MORE_COMMAND, msg_id))) == replies.WECHAT_NO_MORE:
        assert time.monotonic() < deadline
        msg_id += 1
        time.sleep(0.1)
    assert "21200" in reply and servers.standin.messages == []


def test_wechat_enabled_without_a_token_is_a_config_error(built_data_dir, answerer, tmp_path, monkeypatch):
    monkeypatch.delenv(ENV.token_env, raising=False)
    settings = settings_for(built_data_dir, wechat={"enabled": True})
    with pytest.raises(ConfigError, match=ENV.token_env):
        app_for(settings, engine_for(settings, answerer, QueryLog(tmp_path, b"s")))


@pytest.mark.parametrize("text", ["短回答", "一二三四五六七八九十" * 40, "第一行\n" * 120, "ab" * 500])
def test_split_reply_parts_fit_and_lose_nothing(text):
    parts = split_reply(text, 200)
    assert all(len(p.encode("utf-8")) <= 200 for p in parts)
    assert all(p.endswith(replies.WECHAT_MORE_HINT) for p in parts[:-1])
    assert not parts[-1].endswith(replies.WECHAT_MORE_HINT)
    joined = "".join(p.removesuffix(replies.WECHAT_MORE_HINT) for p in parts)
    assert re.sub(r"\s", "", joined) == re.sub(r"\s", "", text)
