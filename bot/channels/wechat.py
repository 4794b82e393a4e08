"""The WeChat Official Account webhook: verify, decrypt, answer within the budget or later, dedupe retries.

WeChat waits 5 seconds for a passive reply and then retries the same MsgId up to three times. So a
question is answered in a worker thread; if the answer is ready within ``reply_budget_s`` it is the
passive reply, otherwise the reply is 正在查询… and the answer follows as a customer-service message.
Retries of a MsgId share the first request's answer and never produce a second one.
"""
from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import re
import time
from collections import OrderedDict
from dataclasses import dataclass

import requests
import xmltodict
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from wechatpy import WeChatClient, parse_message
from wechatpy.crypto import PrpCrypto, WeChatCrypto
from wechatpy.exceptions import WeChatClientException
from wechatpy.replies import TextReply

from bot import replies
from bot.channels.states import ChannelStates, backoff
from bot.channels.http import read_body
from bot.settings import WeChatSettings

log = logging.getLogger(__name__)

_WECHAT_COMMAND = re.compile(rf"^(?:({replies.WECHAT_UNFOLLOW_COMMAND})|({replies.WECHAT_FOLLOW_COMMAND}))"
                             rf"(?:[\s:：]+(.*))?$", re.S)


def wechat_command(text: str) -> tuple[str, str] | None:
    """Read a WeChat follow keyword: ("follow", topic), ("unfollow", number), ("following", ""); None for a
    question (关注 must stand alone or be followed by a space or colon: 关注度 is a word of a question)."""
    text = (text or "").strip()
    if text == replies.WECHAT_FOLLOWING_COMMAND:
        return "following", ""
    match = _WECHAT_COMMAND.match(text)
    if match is None:
        return None
    return ("unfollow" if match.group(1) else "follow"), (match.group(3) or "").strip()

MAX_CLOCK_SKEW_S = 300        # requests signed further from now than this are refused (replays)
SEEN_MESSAGES = 2048          # MsgIds remembered for deduplication
PENDING_USERS = 4096          # users whose unread remainder (「更多」) is kept
SUCCESS = "success"           # tells WeChat "no reply, do not retry"
CHANNEL = "wechat"
FIRST_RETRY_S = 1.0
# errcodes that no retry mends: wrong app id or secret, the server's IP not allowed, the API not granted
CREDENTIAL_ERRORS = {40001, 40002, 40013, 40125, 40164, 41002, 41004, 48001}
SIGNED_REQUESTS = 50_000      # signed (timestamp, nonce, signature) remembered within the clock window
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_OPENID = re.compile(r"[\w\-]{1,128}", re.ASCII)


def cdata_safe(text: str) -> str:
    """Return text that stays one well-formed CDATA section: ``]]>`` split, characters XML forbids removed."""
    return _XML_ILLEGAL.sub("", text).replace("]]>", "]]]]><![CDATA[>")


def well_formed(message) -> bool:
    """Tell whether a parsed message has the fields WeChat always sends, each with its proper type."""
    try:
        if not (isinstance(message.source, str) and _OPENID.fullmatch(message.source)
                and isinstance(message.target, str) and _OPENID.fullmatch(message.target)):
            return False
        _ = message.id, message.time                 # integers: a non-numeric MsgId or CreateTime raises
        if message.type == "event":
            return isinstance(message.event, str)
        return message.type != "text" or message.content is None or isinstance(message.content, str)
    except (TypeError, ValueError, AttributeError, KeyError):
        return False


def signature(*parts: str) -> str:
    """Return WeChat's signature: SHA-1 of the sorted parts joined (token, timestamp, nonce[, encrypt])."""
    return hashlib.sha1("".join(sorted(parts)).encode("utf-8")).hexdigest()


def signature_ok(given: str | None, *parts: str) -> bool:
    """Compare a request's signature with the expected one in constant time."""
    return hmac.compare_digest(signature(*parts).encode("ascii"), (given or "").encode("utf-8", "replace"))


def fresh(timestamp: str | None, now: float | None = None) -> bool:
    """Return whether a request timestamp is within MAX_CLOCK_SKEW_S of now."""
    try:
        return abs((now if now is not None else time.time()) - int(timestamp or "")) <= MAX_CLOCK_SKEW_S
    except ValueError:
        return False


def split_reply(text: str, max_bytes: int, hint: str = replies.WECHAT_MORE_HINT) -> list[str]:
    """Cut text into parts of at most max_bytes UTF-8 bytes, every part but the last ending with the hint."""
    if len(text.encode("utf-8")) <= max_bytes:
        return [text]
    room = max(max_bytes - len(hint.encode("utf-8")), 16)
    parts, rest = [], text
    while len(rest.encode("utf-8")) > max_bytes:
        cut = _prefix_chars(rest, room)
        newline = rest.rfind("\n", 0, cut)
        if newline > cut // 2:          # prefer a line end when one is not too far back
            cut = newline
        parts.append(rest[:cut].rstrip() + hint)
        rest = rest[cut:].lstrip("\n")
    return parts + [rest]


def _prefix_chars(text: str, max_bytes: int) -> int:
    """Return how many leading characters of text fit in max_bytes UTF-8 bytes."""
    return len(text.encode("utf-8")[:max_bytes].decode("utf-8", "ignore"))


class CustomerService(WeChatClient):
    """wechatpy's client with its whole API base configurable (the token URL included); the token is cached."""

    def __init__(self, app_id: str, secret: str, api_base_url: str, timeout: float = 10.0):
        super().__init__(app_id, secret, timeout=timeout)
        self.API_BASE_URL = api_base_url if api_base_url.endswith("/") else api_base_url + "/"

    def fetch_access_token(self):
        return self._fetch_access_token(url=self.API_BASE_URL + "token", params={
            "grant_type": "client_credential", "appid": self.appid, "secret": self.secret})


@dataclass
class _Asked:
    """One MsgId: the reply text being prepared, and whether some response has already delivered it."""

    text: asyncio.Future
    claimed: bool = False


class WeChatChannel:
    """Handle the webhook's GET (verification) and POST (messages) for one Official Account."""

    def __init__(self, settings: WeChatSettings, ask, *, token: str, aes_key: str = "", app_secret: str = "",
                 max_body_bytes: int = 16384, states: ChannelStates | None = None, command=None):
        """`ask(question, user_id)` is a coroutine function returning the answer text; `command(text, user_id)`
        one returning the reply to a keyword (关注 …) or None when the text is a question."""
        self.settings = settings
        self.command = command
        self.states = states if states is not None else ChannelStates()
        self.max_body_bytes = max_body_bytes
        self.ask = ask
        self.token = token
        self.crypto = WeChatCrypto(token, aes_key, settings.app_id) if aes_key else None
        self.client = (CustomerService(settings.app_id, app_secret, settings.api_base_url)
                       if settings.app_id and app_secret else None)
        self._seen: OrderedDict[int, _Asked] = OrderedDict()
        self._signed: OrderedDict[tuple[str, str, str], tuple[float, str]] = OrderedDict()
        self._more: OrderedDict[str, list[str]] = OrderedDict()
        self._deliveries: set[asyncio.Task] = set()

    # -- HTTP --------------------------------------------------------------------------------------
    async def endpoint(self, request: Request) -> Response:
        """Verify the request came from WeChat, then echo (GET) or handle the message (POST)."""
        q = request.query_params
        if not (fresh(q.get("timestamp")) and signature_ok(q.get("signature"), self.token,
                                                           q.get("timestamp", ""), q.get("nonce", ""))):
            log.warning("wechat: refused a request with a bad signature or a stale timestamp")
            return PlainTextResponse("forbidden", status_code=403)
        if request.method == "GET":
            return PlainTextResponse(q.get("echostr", ""))
        body = await read_body(request, self.max_body_bytes)
        if self._replayed(q, body):
            log.warning("wechat: refused a signed request replayed with another body")
            return PlainTextResponse("forbidden", status_code=403)
        xml = self._plaintext(body, q)
        if xml is None:
            return PlainTextResponse("forbidden", status_code=403)
        try:
            message = parse_message(xml)
        except Exception:               # malformed XML or fields: WeChat never sends these
            return PlainTextResponse("bad request", status_code=400)
        if message is None or not well_formed(message):        # an empty body or fields of the wrong kind
            return PlainTextResponse("bad request", status_code=400)
        text = await self.reply_to(message)
        if text is None:
            return PlainTextResponse(SUCCESS)
        reply = TextReply(message=message, content=cdata_safe(text)).render()
        if self.crypto is not None:
            reply = self.crypto.encrypt_message(reply, q.get("nonce", ""), q.get("timestamp"))
        return Response(reply, media_type="application/xml")

    def _replayed(self, q, body: bytes) -> bool:
        """Remember each signed (timestamp, nonce, signature) for the clock window; the same one again with
        another body is a replay (WeChat's own retries resend the same body, and MsgId dedupes those)."""
        now, digest = time.monotonic(), hashlib.sha256(body).hexdigest()
        while self._signed and (now - next(iter(self._signed.values()))[0] > 2 * MAX_CLOCK_SKEW_S
                                or len(self._signed) > SIGNED_REQUESTS):
            self._signed.popitem(last=False)
        key = (q.get("timestamp", ""), q.get("nonce", ""), q.get("signature", ""))
        seen = self._signed.get(key)
        if seen is None:
            self._signed[key] = (now, digest)
            return False
        return seen[1] != digest

    def _plaintext(self, body: bytes, q) -> str | None:
        """Return the message XML, decrypted in safe mode; None if it is not signed by WeChat."""
        if self.crypto is None:
            return body.decode("utf-8", "replace")
        try:
            encrypted = xmltodict.parse(body)["xml"]["Encrypt"]
        except Exception:               # no <Encrypt>: not a safe-mode message
            return None
        if not signature_ok(q.get("msg_signature"), self.token, q.get("timestamp", ""), q.get("nonce", ""),
                            encrypted):
            return None
        try:
            return PrpCrypto(self.crypto.key).decrypt(encrypted, self.settings.app_id)
        except Exception:               # bad padding, wrong app id: forged or corrupted
            return None

    # -- messages ----------------------------------------------------------------------------------
    async def reply_to(self, message) -> str | None:
        """Return the passive reply text for a message, or None for an empty "success"."""
        log.debug("wechat: %s message %s", message.type, message.id or "-")   # never the openid
        if message.type == "event" or str(getattr(message, "_data", {}).get("MsgType", "")).lower() == "event":
            # (an event type wechatpy does not know comes back as an "unknown" message: still an event)
            return self.welcome() if str(getattr(message, "event", "")).startswith("subscribe") else None
        if message.type != "text":
            return replies.WECHAT_TEXT_ONLY
        user, question = message.source, (message.content or "").strip()
        asked = self._seen.get(message.id) if message.id else None
        first = asked is None
        if first:
            if question == replies.WECHAT_MORE_COMMAND:
                text = asyncio.get_running_loop().create_future()
                text.set_result(self._next_part(user) or replies.WECHAT_NO_MORE)
            else:
                text = asyncio.ensure_future(self._ask_or_command(question, user))
            asked = self._remember(message.id, _Asked(text))
        try:
            text = await asyncio.wait_for(asyncio.shield(asked.text), self.settings.reply_budget_s)
        except TimeoutError:
            if not first:
                return None             # the first request already promised the answer
            asked.text.add_done_callback(lambda _: self._deliver_later(asked, user))
            return replies.WECHAT_WORKING if self.client else replies.WECHAT_WORKING_ASK_MORE
        if asked.claimed:
            return None                 # a retry after the answer went out: answer once
        asked.claimed = True
        return self._first_part(user, text) if question != replies.WECHAT_MORE_COMMAND else text

    async def _ask_or_command(self, text: str, user: str) -> str:
        reply = await self.command(text, user) if self.command is not None else None
        return reply if reply is not None else await self.ask(text, user)

    def welcome(self) -> str:
        examples = "\n".join(replies.WECHAT_EXAMPLE_LINE.format(question=q) for q in replies.EXAMPLE_QUESTIONS)
        return replies.WECHAT_WELCOME.format(examples=examples)

    def _remember(self, msg_id: int, asked: _Asked) -> _Asked:
        if msg_id:
            self._seen[msg_id] = asked
            while len(self._seen) > SEEN_MESSAGES:
                self._seen.popitem(last=False)
        return asked

    def _first_part(self, user: str, text: str) -> str:
        """Return the first part of a long answer and keep the rest for 「更多」."""
        parts = split_reply(text, self.settings.max_reply_bytes)
        self._more.pop(user, None)
        if len(parts) > 1:
            self._more[user] = parts[1:]
            while len(self._more) > PENDING_USERS:
                self._more.popitem(last=False)
        return parts[0]

    def _next_part(self, user: str) -> str | None:
        parts = self._more.get(user)
        if not parts:
            return None
        part = parts.pop(0)
        if not parts:
            del self._more[user]
        return part

    # -- answers that missed the budget ------------------------------------------------------------
    def _deliver_later(self, asked: _Asked, user: str) -> None:
        """Send a late answer as a customer-service message (or keep it for 「更多」 without one)."""
        if asked.claimed or asked.text.cancelled():
            return
        asked.claimed = True
        text = self._first_part(user, asked.text.result())
        if self.client is None:
            self._more[user] = [text] + self._more.get(user, [])
            return
        task = asyncio.ensure_future(self._send(user, text))
        self._deliveries.add(task)
        task.add_done_callback(self._deliveries.discard)

    async def _send(self, user: str, text: str) -> None:
        """Send a customer-service message, retrying with back-off while WeChat's API cannot be reached.

        One log line per failed attempt; when every attempt failed, or WeChat refused the credentials,
        the answer is kept for the user's 「更多」 instead.
        """
        waits, attempts = backoff(FIRST_RETRY_S, self.settings.retry_max_s), max(self.settings.send_attempts, 1)
        for attempt in range(1, attempts + 1):
            try:
                await asyncio.to_thread(self.client.message.send_text, user, text)
                self.states.set(CHANNEL, "running")
                return
            except (requests.RequestException, WeChatClientException) as exc:
                if not _retryable(exc):
                    self._refused(exc)
                    break
                self.states.set(CHANNEL, "retrying")
                wait = next(waits)
                then = f"retrying in {wait:g} s" if attempt < attempts else "kept for 「更多」"
                log.warning("wechat: customer-service message not sent (attempt %d of %d, %s); %s",
                            attempt, attempts, _reason(exc), then)
                if attempt < attempts:
                    await asyncio.sleep(wait)
            except Exception:
                log.exception("wechat: a customer-service message could not be sent")
                break
        self._more[user] = [text] + self._more.get(user, [])

    def _refused(self, exc: WeChatClientException) -> None:
        if exc.errcode in CREDENTIAL_ERRORS:
            self.states.set(CHANNEL, "failed")
            log.error("wechat: the API refused app_id / env %s (%s): late answers wait for 「更多」 until it is "
                      "fixed", self.settings.app_secret_env, _reason(exc))
        else:
            log.warning("wechat: WeChat refused a customer-service message (%s); kept for 「更多」", _reason(exc))

    async def close(self) -> None:
        """Let late answers already on their way finish sending."""
        if self._deliveries:
            await asyncio.wait(self._deliveries, timeout=10)


def _retryable(exc: Exception) -> bool:
    """Return whether WeChat's API was unreachable or busy (worth another try), not a refusal."""
    return isinstance(exc, requests.RequestException) or getattr(exc, "errcode", None) in (None, -1)


def _reason(exc: Exception) -> str:
    """Return a short reason for the log: the error class or WeChat's errcode, never a URL (it holds the token)."""
    if isinstance(exc, WeChatClientException):
        if exc.errcode is None:
            status = getattr(exc.response, "status_code", "?")
            return f"HTTP {status}"
        return f"errcode {exc.errcode} {exc.errmsg}"
    return type(exc).__name__
