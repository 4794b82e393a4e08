"""Channels fail alone: the real `serve` with Telegram's Bot API stand-in stopped, restarted, or refusing the token;
WeChat's API stand-in stopped and restarted under a late answer. The web page and API keep serving throughout."""
from __future__ import annotations

import asyncio
import logging
import threading
import time

import httpx
import pytest

from bot import replies
from bot.channels.states import ChannelStates, backoff
from bot.querylog import QueryLog
from tests.conftest import app_for, engine_for, settings_for
from tests.telegram_standin import BotApiStandIn
from tests.test_wechat import APP_ID, BLOOD, OPENID, SECRET, WeChatServers, text_xml
from tests.test_wechat import TOKEN as WECHAT_TOKEN
from tests.test_wechat import wechat  # noqa: F401 - the fixture that starts the app with a WeChat API stand-in
from tests.wechat_standin import WeChatStandIn, free_port, serve_app

TOKEN = "5550009876:AAH-standin-token-ChannelsAlone"
TOKEN_ENV = "BULLETIN_BOT_TELEGRAM_TOKEN"


class ServeThread:
    """Run `bot.channels.serve.serve` in its own event loop in a thread; cancel it on exit, as Ctrl-C would."""

    def __init__(self, settings, answerer):
        self.error: BaseException | None = None
        self.settings, self.answerer = settings, answerer
        self.running = threading.Event()
        self.thread = threading.Thread(target=self._main, name="serve", daemon=True)
        self.url = f"http://127.0.0.1:{settings.web.port}"

    async def _serve(self) -> None:
        from bot.channels.serve import serve
        self.loop, self.task = asyncio.get_running_loop(), asyncio.current_task()
        self.running.set()
        from tests.conftest import engine_for
        await serve(self.settings, engine_for(self.settings, self.answerer))

    def _main(self) -> None:
        try:
            asyncio.run(self._serve())      # as `bulletin-bot serve` runs it: leftover tasks are finished
        except asyncio.CancelledError:
            pass
        except BaseException as exc:        # noqa: BLE001 - handed to the test thread
            self.error = exc

    def health(self) -> dict:
        return httpx.get(self.url + "/healthz", timeout=30).json()

    def wait_for(self, channel: str, state: str, timeout: float = 30) -> dict:
        """Wait until /healthz reports the channel in that state; fail if serve stopped."""
        deadline = time.monotonic() + timeout
        while True:
            assert self.thread.is_alive(), f"serve stopped: {self.error!r}"
            try:
                health = self.health()
                if health["channels"].get(channel) == state:
                    return health
            except httpx.TransportError:
                pass                        # uvicorn not listening yet
            assert time.monotonic() < deadline, f"{channel} never became {state}"
            time.sleep(0.1)

    def __enter__(self) -> "ServeThread":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.running.wait(30)
        if self.thread.is_alive():
            self.loop.call_soon_threadsafe(self.task.cancel)
        self.thread.join(30)
        assert not self.thread.is_alive(), "serve did not stop when cancelled"
        assert self.error is None, f"serve crashed: {self.error!r}"


@pytest.fixture
def serve_settings(tmp_path, monkeypatch):
    """Settings for `serve` on a free port, Telegram pointed at a port where nothing listens (yet)."""
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    monkeypatch.setenv("BULLETIN_BOT_LOG_SALT", "test-salt")
    port = free_port()
    telegram = {"base_url": f"http://127.0.0.1:{port}/bot", "base_file_url": f"http://127.0.0.1:{port}/file/bot",
                "retry_max_s": 0.5}
    return settings_for(tmp_path, telegram=telegram, web={"port": free_port()}), port


def ask_web(url: str) -> dict:
    response = httpx.post(url + "/api/ask", json={"question": BLOOD}, timeout=60)
    assert response.status_code == 200
    return response.json()


def test_backoff_doubles_up_to_its_ceiling():
    waits = backoff(1.0, 5.0)
    assert [next(waits) for _ in range(5)] == [1.0, 2.0, 4.0, 5.0, 5.0]
    with pytest.raises(ValueError):
        ChannelStates(telegram="asleep")


def test_web_serves_while_telegram_is_unreachable_and_telegram_recovers(serve_settings, answerer, caplog):
    settings, telegram_port = serve_settings
    caplog.set_level(logging.INFO)
    with ServeThread(settings, answerer) as serve:
        health = serve.wait_for("telegram", "retrying")
        assert health["status"] == "ok" and health["channels"]["web"] == "running"
        assert "21200" in ask_web(serve.url)["answer"]
        time.sleep(1.5)                                     # a few more retries, each one line
        failures = [r for r in caplog.records if "cannot reach the Bot API" in r.getMessage()]
        assert len(failures) >= 2 and all(r.exc_info is None for r in failures)
        assert all(TOKEN not in r.getMessage() for r in caplog.records)
        with BotApiStandIn(TOKEN, port=telegram_port) as api:            # Telegram comes back
            api.wait_for("getUpdates", timeout=30)
            serve.wait_for("telegram", "running")
            user = BotApiStandIn.user(620000001)
            mark = api.mark()
            api.message(user, BLOOD)
            reply = api.wait_for("sendMessage", lambda p: p["chat_id"] == user["id"], after=mark)[-1]
            assert "21200" in reply.params["text"]
        serve.wait_for("telegram", "retrying")              # gone again while polling: back to retrying
        assert "21200" in ask_web(serve.url)["answer"]
        with BotApiStandIn(TOKEN, port=telegram_port) as api:
            mark = api.mark()
            api.message(user, BLOOD)                         # waiting: the first long poll back returns with it
            reply = api.wait_for("sendMessage", lambda p: p["chat_id"] == user["id"], after=mark, timeout=60)[-1]
            assert "21200" in reply.params["text"]
            serve.wait_for("telegram", "running")
    # stopped while "Telegram" was away: PTB's last getUpdates fails, logged as one line, never a traceback
    tracebacks = [(r.name, r.getMessage(), repr(r.exc_info[1])) for r in caplog.records
                  if r.name.startswith(("telegram", "bot")) and r.exc_info is not None]
    assert not tracebacks, tracebacks
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR and r.name.startswith("bot")]


def test_a_rejected_token_is_one_error_line_and_the_web_keeps_serving(serve_settings, answerer, caplog):
    settings, telegram_port = serve_settings
    with BotApiStandIn("5550000000:AAH-another-bots-token", port=telegram_port):
        with ServeThread(settings, answerer) as serve:
            health = serve.wait_for("telegram", "failed")
            assert health["status"] == "ok" and "21200" in ask_web(serve.url)["answer"]
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "rejected the token in env BULLETIN_BOT_TELEGRAM_TOKEN" in errors[0].getMessage()
    assert errors[0].exc_info is None and TOKEN not in errors[0].getMessage()


def test_wechat_late_answer_waits_out_an_unreachable_api_then_arrives(built_data_dir, answerer, tmp_path,
                                                                      monkeypatch, caplog):
    monkeypatch.setenv("BULLETIN_BOT_WECHAT_TOKEN", WECHAT_TOKEN)
    monkeypatch.setenv("BULLETIN_BOT_WECHAT_SECRET", SECRET)
    monkeypatch.delenv("BULLETIN_BOT_WECHAT_AES_KEY", raising=False)
    port = free_port()
    wechat = {"enabled": True, "app_id": APP_ID, "api_base_url": f"http://127.0.0.1:{port}/cgi-bin/",
              "reply_budget_s": 0.01, "send_attempts": 20, "retry_max_s": 0.3}
    channels = ChannelStates()
    querylog = QueryLog(tmp_path / "log", b"test-salt")
    app = app_for(settings_for(built_data_dir, wechat=wechat), engine_for(settings_for(built_data_dir, wechat=wechat), answerer, querylog), channels)
    with serve_app(app) as url:
        servers = WeChatServers(url, "/wechat", None, querylog, safe=False)
        assert servers.send(text_xml(BLOOD, 7101)) == replies.WECHAT_WORKING
        deadline = time.monotonic() + 30
        while channels.get("wechat") != "retrying":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert httpx.get(url + "/healthz").json()["channels"]["wechat"] == "retrying"
        with WeChatStandIn(APP_ID, SECRET, port=port) as standin:       # WeChat's API comes back
            [message] = standin.wait_for_messages(1)
            assert message["touser"] == OPENID and "21200" in message["text"]["content"]
            deadline = time.monotonic() + 10
            while channels.get("wechat") != "running":
                assert time.monotonic() < deadline
                time.sleep(0.05)
        servers.close()
    failures = [r for r in caplog.records if "customer-service message not sent" in r.getMessage()]
    assert failures and all(r.exc_info is None and "access_token" not in r.getMessage() for r in failures)


def test_wechat_refused_credentials_are_one_error_line_and_the_answer_waits_for_more(wechat, caplog):
    servers = wechat(reply_budget_s=0.01)
    servers.standin.secret = "another-secret"               # the console's secret was changed
    assert servers.send(text_xml(BLOOD, 7201)) == replies.WECHAT_WORKING
    deadline = time.monotonic() + 30
    while not [r for r in caplog.records if r.levelno >= logging.ERROR]:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    [error] = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert "errcode 40125" in error.getMessage() and error.exc_info is None
    assert "21200" in servers.send(text_xml(replies.WECHAT_MORE_COMMAND, 7202))
    assert servers.standin.messages == []
