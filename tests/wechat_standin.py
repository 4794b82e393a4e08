"""Real local servers for tests: the app under uvicorn, and a stand-in for WeChat's API.

The stand-in implements what the bot calls: GET /cgi-bin/token (client credentials -> access token),
POST /cgi-bin/message/custom/send (a customer-service message) and POST /cgi-bin/message/template/send (a
template message: ``templates``), recording every call. Openids in ``unsubscribed`` get errcode 43004.
"""
from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import uvicorn

ACCESS_TOKEN = "standin-access-token"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serve_app(app, port: int | None = None):
    """Run an ASGI app under uvicorn in a thread on 127.0.0.1; yield its base URL."""
    port = port or free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


class WeChatStandIn:
    """WeChat's token and customer-service endpoints on a local port; `messages` are the texts sent."""

    def __init__(self, app_id: str, secret: str, port: int = 0):
        """``port`` 0 picks a free one; give a stopped stand-in's port to bring "WeChat" back where it was."""
        self.app_id, self.secret = app_id, secret
        self.token_requests = 0
        self.messages: list[dict] = []
        self.templates: list[dict] = []
        self.unsubscribed: set[str] = set()
        self._changed = threading.Condition()
        self._server = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/cgi-bin/"

    def __enter__(self) -> "WeChatStandIn":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def wait_for_messages(self, n: int, timeout: float = 30.0) -> list[dict]:
        """Block until n customer-service messages arrived (or the timeout); return them all."""
        with self._changed:
            self._changed.wait_for(lambda: len(self.messages) >= n, timeout)
            return list(self.messages)

    def _handler(self):
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):          # keep test output quiet
                pass

            def _reply(self, payload: dict) -> None:
                body = json.dumps(payload).encode("utf-8")
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                url = urlsplit(self.path)
                q = {k: v[0] for k, v in parse_qs(url.query).items()}
                if url.path != "/cgi-bin/token":
                    return self._reply({"errcode": 404, "errmsg": "no such api"})
                if q.get("grant_type") != "client_credential" or q.get("appid") != standin.app_id \
                        or q.get("secret") != standin.secret:
                    return self._reply({"errcode": 40125, "errmsg": "invalid appsecret"})
                with standin._changed:
                    standin.token_requests += 1
                self._reply({"access_token": ACCESS_TOKEN, "expires_in": 7200})

            def do_POST(self):
                url = urlsplit(self.path)
                q = {k: v[0] for k, v in parse_qs(url.query).items()}
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                kinds = {"/cgi-bin/message/custom/send": standin.messages,
                         "/cgi-bin/message/template/send": standin.templates}
                if url.path not in kinds:
                    return self._reply({"errcode": 404, "errmsg": "no such api"})
                if q.get("access_token") != ACCESS_TOKEN:
                    return self._reply({"errcode": 40001, "errmsg": "invalid credential"})
                message = json.loads(body.decode("utf-8"))
                if message.get("touser") in standin.unsubscribed:
                    return self._reply({"errcode": 43004, "errmsg": "require subscribe"})
                with standin._changed:
                    kinds[url.path].append(message)
                    standin._changed.notify_all()
                self._reply({"errcode": 0, "errmsg": "ok", "msgid": len(kinds[url.path])})

        return Handler
