"""A real local HTTP server speaking the OpenAI chat-completions wire format, programmable per test.

    with running_standin() as server:
        server.reply = lambda messages: "本次活动共有71名干部职工成功献血。"
        ...  # point a client at server.base_url
        server.requests[0]["messages"]   # every request body, parsed

``server.status = 500`` answers every request with an HTTP error, ``server.raw_body = b"..."``
sends those bytes instead of a completion, ``server.delay_s`` sleeps before answering.
"""
from __future__ import annotations

import contextlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Iterator

COMPLETIONS_PATH = "/v1/chat/completions"


class StandinServer(ThreadingHTTPServer):
    """ThreadingHTTPServer that holds the programmable reply and the recorded requests."""

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.reply: Callable[[list[dict]], str] = lambda messages: "简报中没有找到。"
        self.status = 200
        self.raw_body: bytes | None = None
        self.delay_s = 0.0
        self.requests: list[dict] = []
        self.headers: list[dict[str, str]] = []
        self._lock = threading.Lock()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"

    def record(self, body: dict, headers: dict[str, str]) -> None:
        """Remember one request body and its headers (handlers run in several threads)."""
        with self._lock:
            self.requests.append(body)
            self.headers.append(headers)


class _Handler(BaseHTTPRequestHandler):
    server: StandinServer

    def do_POST(self) -> None:
        """Answer POST /v1/chat/completions as the server is currently programmed to."""
        if self.path != COMPLETIONS_PATH:
            return self._send(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        self.server.record(body, {k.lower(): v for k, v in self.headers.items()})
        time.sleep(self.server.delay_s)
        if self.server.status != 200:
            return self._send(self.server.status, {"error": {"message": "stand-in failure", "type": "server_error"}})
        if self.server.raw_body is not None:
            return self._send_bytes(200, self.server.raw_body)
        self._send(200, completion(body.get("model", ""), self.server.reply(body.get("messages", []))))

    def _send(self, status: int, payload: dict) -> None:
        self._send_bytes(status, json.dumps(payload, ensure_ascii=False).encode("utf-8"))

    def _send_bytes(self, status: int, data: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):   # client gave up (timeout)
            self.wfile.write(data)

    def log_message(self, format: str, *args) -> None:
        """Keep test output quiet."""


def completion(model: str, content: str) -> dict:
    """Return a non-streaming chat.completion object holding ``content``."""
    return {
        "id": f"chatcmpl-standin-{time.monotonic_ns()}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
    }


@contextlib.contextmanager
def running_standin() -> Iterator[StandinServer]:
    """Start a stand-in server in a thread on 127.0.0.1 (free port) and stop it afterwards."""
    server = StandinServer()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
