"""A local stand-in for the Telegram Bot API: a real HTTP server on 127.0.0.1 that records every call.

Tests push updates (``message``, ``callback``, ``push``), the bot under test fetches them with getUpdates
(long poll) and calls sendMessage & co., which are recorded and can be awaited with ``wait_for``.
sendMessage / editMessageText check what Telegram checks: well-formed HTML and at most 4096 characters
after entity parsing. Files put with ``add_file`` are served by getFile and /file/bot<token>/<path>.
"""
from __future__ import annotations

import asyncio
import html
import itertools
import json
import re
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, unquote, urlparse

STRING_PARAMS = {"text", "parse_mode", "callback_query_id", "file_id", "url", "secret_token", "action",
                 "caption", "description", "short_description", "language_code"}
ALLOWED_TAGS = re.compile(r"</?(b|strong|i|em|u|ins|s|strike|del|code|pre|blockquote|tg-spoiler)>|<a href=\"[^\"]*\">|</a>")
ENTITY = re.compile(r"&(lt|gt|amp|quot|#\d+|#x[0-9a-fA-F]+);")
TEXT_LIMIT = 4096


@dataclass
class Call:
    """One Bot API request as the bot made it."""

    method: str
    params: dict
    at: float = field(default_factory=time.monotonic)
    result_id: int | None = None          # the message a sendMessage created


def visible_text(text: str, parse_mode: str | None) -> str:
    """Return the text Telegram would show, raising ValueError for malformed HTML."""
    if parse_mode != "HTML":
        return text
    stripped = ENTITY.sub("", ALLOWED_TAGS.sub("", text))
    if re.search(r"[<>&]", stripped):
        raise ValueError("Bad Request: can't parse entities: unescaped or unsupported markup")
    return html.unescape(ALLOWED_TAGS.sub("", text))


_UPDATE_IDS = itertools.count(1)   # Telegram numbers a bot's updates in one growing sequence, across reconnects

class BotApiStandIn:
    """The Bot API for one bot token, served over HTTP in a thread."""

    def __init__(self, token: str, bot_id: int = 7000001, username: str = "nanyang_bulletin_bot", port: int = 0,
                 messages_per_s: float | None = None):
        """``port`` 0 picks a free one; give a stopped stand-in's port to bring "Telegram" back where it was.

        ``messages_per_s``: Telegram's flood limit on sendMessage, as a bucket of that many messages refilled at
        that rate; a message beyond it gets "429 Too Many Requests" (counted in ``throttled``).
        """
        self.token = token
        self.me = {"id": bot_id, "is_bot": True, "first_name": "简报助手", "username": username,
                   "can_join_groups": True, "can_read_all_group_messages": False, "supports_inline_queries": False}
        self.calls: list[Call] = []
        self.webhook: dict | None = None
        self.listeners: list = []          # called with each successful Call (the load benchmark's clock)
        self._cond = threading.Condition()
        self._updates: list[dict] = []
        self._update_ids = _UPDATE_IDS     # one sequence for every stand-in: a bot's update ids only grow
        self._message_ids = itertools.count(1000)
        self._chats: dict[int, dict] = {}
        self._messages: dict[tuple[int, int], dict] = {}
        self._files: dict[str, tuple[str, bytes]] = {}
        self._failures: dict[str, list[str]] = {}
        self._closing = False
        self.blocked: set[int] = set()     # chats whose user blocked the bot: sendMessage gets 403
        self.throttled = 0
        self._rate = messages_per_s
        self._bucket = (messages_per_s or 0.0, time.monotonic())
        self._server = _Server(("127.0.0.1", port), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="bot-api-standin", daemon=True)

    # -- lifecycle -----------------------------------------------------------------------------
    def __enter__(self) -> "BotApiStandIn":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._server.shutdown()
        self._server.server_close()

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/bot"

    @property
    def base_file_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/file/bot"

    # -- what tests push -----------------------------------------------------------------------
    def push(self, **update) -> dict:
        """Queue one update (update_id is added) for getUpdates; return it."""
        with self._cond:
            update = {"update_id": next(self._update_ids), **update}
            self._updates.append(update)
            self._cond.notify_all()
        return update

    @staticmethod
    def user(user_id: int, first_name: str = "居民") -> dict:
        return {"id": user_id, "is_bot": False, "first_name": first_name, "language_code": "zh-hans"}

    @staticmethod
    def private_chat(user: dict) -> dict:
        return {"id": user["id"], "type": "private", "first_name": user["first_name"]}

    @staticmethod
    def group_chat(chat_id: int = -100123, title: str = "社区群") -> dict:
        return {"id": chat_id, "type": "group", "title": title}

    def new_message(self, user: dict, text: str | None = None, chat: dict | None = None, **extra) -> dict:
        """Return a message from ``user`` (in a private chat unless ``chat``), with entities for /commands."""
        chat = chat or self.private_chat(user)
        with self._cond:
            self._chats[chat["id"]] = chat
            message = {"message_id": next(self._message_ids), "date": int(time.time()), "chat": chat, "from": user}
        if text is not None:
            message["text"] = text
            if text.startswith("/"):
                length = len(text.split()[0].encode("utf-16-le")) // 2
                message["entities"] = [{"type": "bot_command", "offset": 0, "length": length}]
        message.update(extra)
        return message

    def message(self, user: dict, text: str | None = None, chat: dict | None = None, **extra) -> dict:
        """Push a message update; return the message."""
        message = self.new_message(user, text, chat, **extra)
        self.push(message=message)
        return message

    def callback(self, user: dict, message: dict, data: str) -> dict:
        """Push a button press on one of the bot's messages."""
        query = {"id": str(next(self._update_ids) + 900000), "from": user, "chat_instance": "ci",
                 "message": message, "data": data}
        self.push(callback_query=query)
        return query

    def add_file(self, file_id: str, name: str, content: bytes) -> dict:
        """Store a file for getFile / download; return the Document as a message carries it."""
        with self._cond:
            self._files[file_id] = (f"documents/{file_id}_{len(self._files)}{name[name.rfind('.'):]}", content)
        return {"file_id": file_id, "file_unique_id": f"u{file_id}", "file_name": name,
                "mime_type": "text/plain", "file_size": len(content)}

    def fail_next(self, method: str, description: str = "Bad Request: simulated failure") -> None:
        """Make the next call of ``method`` fail with a 400."""
        with self._cond:
            self._failures.setdefault(method, []).append(description)

    # -- what tests read -----------------------------------------------------------------------
    def calls_of(self, method: str, **match) -> list[Call]:
        with self._cond:
            return [c for c in self.calls if c.method == method
                    and all(c.params.get(k) == v for k, v in match.items())]

    def wait_for(self, method: str, predicate=lambda params: True, timeout: float = 20.0, count: int = 1,
                 after: int = 0) -> list[Call]:
        """Wait until ``count`` calls of ``method`` (from the ``after``-th call on) satisfy ``predicate``."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = [c for c in self.calls[after:] if c.method == method and predicate(c.params)]
                if len(found) >= count:
                    return found
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = [(c.method, str(c.params.get("text", ""))[:60]) for c in self.calls[after:]]
                    raise TimeoutError(f"no {count} x {method} within {timeout}s; calls: {seen}")
                self._cond.wait(left)

    def mark(self) -> int:
        """Return the number of calls so far (for ``wait_for(after=...)``)."""
        with self._cond:
            return len(self.calls)

    def sent_message(self, call: Call) -> dict:
        """Return the message a recorded sendMessage created (to press its buttons)."""
        return self._messages[(call.params["chat_id"], call.result_id)]

    def post_to_webhook(self, update: dict, secret: str | None) -> int:
        """Deliver an update to the registered webhook as Telegram does; return the HTTP status."""
        update = {"update_id": next(self._update_ids), **update}
        headers = {"Content-Type": "application/json"}
        if secret is not None:
            headers["X-Telegram-Bot-Api-Secret-Token"] = secret
        request = urllib.request.Request(self.webhook["url"], data=json.dumps(update).encode(), headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status
        except urllib.error.HTTPError as exc:
            return exc.code

    # -- the Bot API ---------------------------------------------------------------------------
    def handle(self, method: str, params: dict):
        """Record one call and return (http status, response body)."""
        with self._cond:
            call = Call(method, params)
            self.calls.append(call)
            self._cond.notify_all()
            failures = self._failures.get(method)
            if failures:
                return 400, {"ok": False, "error_code": 400, "description": failures.pop(0)}
            if method == "sendMessage" and not self._take_token():
                self.throttled += 1
                return 429, {"ok": False, "error_code": 429, "description": "Too Many Requests: retry after 1",
                             "parameters": {"retry_after": 1}}
            if method == "sendMessage" and params.get("chat_id") in self.blocked:
                return 403, {"ok": False, "error_code": 403, "description": "Forbidden: bot was blocked by the user"}
        if method == "getUpdates":
            return 200, {"ok": True, "result": self._get_updates(params)}
        api = getattr(self, f"_api_{method}", None)
        if api is None:
            return 404, {"ok": False, "error_code": 404, "description": "Not Found: method not found"}
        try:
            result = api(params, call)
        except ValueError as exc:
            return 400, {"ok": False, "error_code": 400, "description": str(exc)}
        for listener in self.listeners:
            listener(call)
        return 200, {"ok": True, "result": result}

    def _take_token(self) -> bool:
        """Take one message from the flood bucket (always allowed without a limit); call with the lock held."""
        if self._rate is None:
            return True
        level, then = self._bucket
        now = time.monotonic()
        level = min(self._rate, level + (now - then) * self._rate)
        if level < 1:
            self._bucket = (level, now)
            return False
        self._bucket = (level - 1, now)
        return True

    def _get_updates(self, params: dict) -> list[dict]:
        offset = int(params.get("offset") or 0)
        deadline = time.monotonic() + float(params.get("timeout") or 0)
        with self._cond:
            while True:
                self._updates = [u for u in self._updates if u["update_id"] >= offset]
                if self._updates or self._closing or time.monotonic() >= deadline:
                    return self._updates[:int(params.get("limit") or 100)]
                self._cond.wait(deadline - time.monotonic())

    def _api_getMe(self, params, call):
        return self.me

    def _message_out(self, params: dict, call: Call) -> dict:
        text = params.get("text", "")
        shown = visible_text(text, params.get("parse_mode"))
        if not shown.strip():
            raise ValueError("Bad Request: message text is empty")
        if len(shown.encode("utf-16-le")) // 2 > TEXT_LIMIT:
            raise ValueError("Bad Request: message is too long")
        return shown

    def _api_sendMessage(self, params, call):
        self._message_out(params, call)
        chat_id = params["chat_id"]
        with self._cond:
            chat = self._chats.get(chat_id, {"id": chat_id, "type": "private"})
            message = {"message_id": next(self._message_ids), "date": int(time.time()), "chat": chat,
                       "from": self.me, "text": params["text"]}
            if "reply_markup" in params:
                message["reply_markup"] = params["reply_markup"]
            self._messages[(chat_id, message["message_id"])] = message
            call.result_id = message["message_id"]
            self._cond.notify_all()
        return message

    def _api_editMessageText(self, params, call):
        self._message_out(params, call)
        key = (params["chat_id"], params["message_id"])
        with self._cond:
            message = self._messages.get(key)
            if message is None:
                raise ValueError("Bad Request: message to edit not found")
            if message["text"] == params["text"] and message.get("reply_markup") == params.get("reply_markup"):
                raise ValueError("Bad Request: message is not modified")
            message = {**message, "text": params["text"], "edit_date": int(time.time())}
            message.pop("reply_markup", None)
            if "reply_markup" in params:
                message["reply_markup"] = params["reply_markup"]
            self._messages[key] = message
        return message

    def _api_sendChatAction(self, params, call):
        return True

    def _api_answerCallbackQuery(self, params, call):
        return True

    def _api_setMyCommands(self, params, call):
        return True

    def _api_deleteWebhook(self, params, call):
        self.webhook = None
        return True

    def _api_setWebhook(self, params, call):
        self.webhook = {"url": params["url"], "secret_token": params.get("secret_token")}
        return True

    def _api_getFile(self, params, call):
        path, content = self._files[params["file_id"]]
        return {"file_id": params["file_id"], "file_unique_id": f"u{params['file_id']}", "file_size": len(content),
                "file_path": path}

    def file_content(self, path: str) -> bytes | None:
        with self._cond:
            self.calls.append(Call("download", {"path": path}))
            self._cond.notify_all()
            return next((c for p, c in self._files.values() if p == path), None)


class BotThread:
    """Run ``run_telegram`` in its own event loop in a thread; cancel it on exit, as Ctrl-C would."""

    def __init__(self, settings, answerer, querylog, token):
        from bot.channels.sections import TelegramSections
        from bot.engine import Engine
        self.engine = Engine(settings, answerer=answerer, querylog=querylog, workers=1)
        sections = TelegramSections(settings.telegram, settings.data, settings.wechat, settings.follow)
        self.args = (sections, self.engine, token)
        self.loop = asyncio.new_event_loop()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._main, name="telegram-bot", daemon=True)

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        from bot.channels.telegram import run_telegram
        self.task = self.loop.create_task(run_telegram(*self.args))
        try:
            self.loop.run_until_complete(self.task)
        except asyncio.CancelledError:
            pass
        except BaseException as exc:        # noqa: BLE001 - handed to the test thread
            self.error = exc
        finally:
            self.loop.close()

    def started(self, api: BotApiStandIn, method: str) -> dict:
        """Wait until the bot calls ``method`` (it has started), failing at once if it crashed."""
        deadline = time.monotonic() + 30
        while True:
            try:
                return api.wait_for(method, timeout=0.2)[0].params
            except TimeoutError:
                if not self.thread.is_alive() or time.monotonic() > deadline:
                    raise AssertionError(f"the bot did not start: {self.error!r}") from None

    def __enter__(self) -> "BotThread":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.thread.is_alive():
            self.loop.call_soon_threadsafe(self.task.cancel)
        self.thread.join(30)
        assert not self.thread.is_alive(), "the bot did not stop when cancelled"
        assert self.error is None, f"the bot crashed: {self.error!r}"


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        """Ignore clients that hung up (a cancelled long poll); report anything else."""
        import sys
        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)


def _decode(params: dict[str, str]) -> dict:
    out = {}
    for key, value in params.items():
        if key in STRING_PARAMS:
            out[key] = value
        else:
            try:
                out[key] = json.loads(value)
            except ValueError:
                out[key] = value
    return out


def _handler_for(api: BotApiStandIn):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:        # quiet: tests read the recorded calls instead
            pass

        def _reply(self, status: int, body: bytes, content_type: str = "application/json") -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            if api._closing:                           # a stopped server keeps no connection open
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            self.wfile.write(body)

        def _route(self) -> None:
            if api._closing:                           # stopped: a kept-alive connection is dropped unanswered
                self.close_connection = True
                return
            path = unquote(urlparse(self.path).path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            file_prefix = f"/file/bot{api.token}/"
            if path.startswith(file_prefix):
                content = api.file_content(path[len(file_prefix):])
                if content is None:
                    self._reply(404, b"not found", "text/plain")
                else:
                    self._reply(200, content, "application/octet-stream")
                return
            match = re.fullmatch(r"/bot([^/]+)/(\w+)", path)
            if not match or match.group(1) != api.token:
                self._reply(401, json.dumps({"ok": False, "error_code": 401, "description": "Unauthorized"}).encode())
                return
            kind = self.headers.get("Content-Type", "")
            if "json" in kind:
                params = json.loads(raw or b"{}")
            else:
                params = _decode(dict(parse_qsl(raw.decode("utf-8"), keep_blank_values=True)))
            status, body = api.handle(match.group(2), params)
            self._reply(status, json.dumps(body, ensure_ascii=False).encode("utf-8"))

        do_GET = do_POST = _route

    return Handler
