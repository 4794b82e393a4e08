"""The ASGI app under uvicorn: the web chat page (/), the HTTP API (/api/*, /healthz) and the WeChat webhook.

    POST /api/ask {"question": "...", "k": 5}   the same JSON object as `bulletin-bot ask --json`
    GET  /api/issues                           the indexed issues, newest first
    GET  /api/article?date=YYYY-MM-DD&title=…  one article's full text (what a citation names)
    GET  /healthz                              index loaded, issue count, last ingest time
    GET  /feed.xml[?q=义诊+镇平]                 Atom feed of every article, or of those a topic matches
    GET|POST [wechat] path                     the WeChat Official Account webhook (when enabled)

Client errors are JSON ``{"error": "..."}``: 400 for missing or malformed parameters (bad JSON, nested too
deep, a question that is not text or holds lone surrogates, /api/article without date and title), 413/422
for sizes, 503 only while no index can be served; anything unexpected is logged in one line and answered
with a generic 500 message, never a stack trace.
"""
from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import html
import json
import logging
import os
import string
import traceback
from pathlib import Path
from urllib.parse import quote

import uvicorn
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from bot import replies
from bot.channels.http import read_body
from bot.channels.sections import WebSections
from bot.channels.states import ChannelStates
from bot.engine import BulletinBotError, ConfigError, Engine, IndexBusy, IndexCorrupt, IndexMismatch
from bot.settings import FollowSettings, WebSettings

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
MAX_K = 50
WECHAT = "wechat"
SECURITY_HEADERS = {"Content-Security-Policy": "default-src 'self'; img-src 'self' data:",
                    "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}


def _answer_text(engine: Engine):
    """Return the coroutine function WeChat answers with: the answer text, or a short apology; it never raises
    (a channel reply must go out)."""
    async def ask_text(question: str, user_id: str, channel: str = "wechat") -> str:
        try:
            return (await engine.ask(question, channel=channel, user_id=user_id)).answer.text
        except BulletinBotError as exc:
            return exc.user_message
        except Exception:
            log.exception("answering failed")
            return replies.SORRY
    return ask_text


def build_app(sections: WebSections, engine: Engine, channels: ChannelStates | None = None) -> Starlette:
    """Return the ASGI app: the web page and API if [web] is enabled, the WeChat webhook if [wechat] is.

    ``channels`` is the state of every channel of the process, reported by /healthz.
    """
    channels = channels if channels is not None else ChannelStates()
    api = _Api(sections.web, sections.follow, engine, channels)
    routes = [Route("/healthz", api.healthz)]
    if sections.web.enabled:
        routes += [Route("/", api.page), Route("/api/ask", api.ask, methods=["POST"]),
                   Route("/api/issues", api.issues), Route("/api/article", api.article), Route("/feed.xml", api.feed),
                   Mount("/static", StaticFiles(directory=STATIC), name="static")]
        channels.set("web", "running")
    wechat = _wechat_channel(sections, engine, channels) if sections.wechat.enabled else None
    if wechat is not None:
        routes.append(Route(sections.wechat.path, wechat.endpoint, methods=["GET", "POST"]))
        channels.set("wechat", "running")

    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        if wechat is not None:
            await wechat.close()

    app = Starlette(routes=routes, lifespan=lifespan, middleware=[Middleware(ServerErrors)],
                    exception_handlers={HTTPException: _http_error, BulletinBotError: _bot_error})
    app.state.engine = engine
    return app


def _wechat_channel(sections: WebSections, engine: Engine, channels: ChannelStates):
    """Return the WeChat channel with its secrets read from the environment variables config names."""
    from bot.channels.wechat import WeChatChannel
    cfg = sections.wechat
    token = os.environ.get(cfg.token_env, "")
    if not token:
        raise ConfigError(f"[wechat] is enabled but env {cfg.token_env} (the console token) is not set")
    aes_key = os.environ.get(cfg.aes_key_env, "")
    if aes_key and not cfg.app_id:
        raise ConfigError("[wechat] safe mode (AES key set) needs app_id in config.toml")
    if aes_key and len(aes_key) != 43:
        raise ConfigError(f"env {cfg.aes_key_env} must be the console's 43-character EncodingAESKey")
    secret = os.environ.get(cfg.app_secret_env, "")
    if not (cfg.app_id and secret):
        log.warning("wechat: no app_id or %s: late answers wait for 「更多」 instead of a customer-service message",
                    cfg.app_secret_env)
    return WeChatChannel(cfg, _answer_text(engine), token=token, aes_key=aes_key, app_secret=secret,
                         max_body_bytes=sections.web.max_body_bytes, states=channels,
                         command=_wechat_follow(sections.follow, engine))


def _wechat_follow(follow: FollowSettings, engine: Engine):
    """Return the coroutine function answering 关注 / 取消关注 / 我的关注 (None for anything else)."""
    from bot.channels.wechat import wechat_command

    async def command(text: str, user: str) -> str | None:
        parsed = wechat_command(text)
        if parsed is None:
            return None
        verb, argument = parsed
        if verb == "following":
            return await engine.io(engine.following, WECHAT, user)
        if verb == "unfollow":
            return await engine.io(engine.unfollow, WECHAT, user, argument)
        reply = await engine.io(engine.follow, WECHAT, user, user, argument)
        if not reply.added:
            return reply.text
        return reply.text + "\n" + (replies.WECHAT_FOLLOW_FOOTER if follow.wechat_template_id else
                                    replies.FOLLOW_FEED.format(url=engine.feed_url(reply.added)))
    return command


class _Api:
    """The web page and the HTTP API endpoints. Answers wait for a worker; everything else runs on the
    engine's I/O threads, so /healthz, /api/issues and the page never wait behind answers."""

    def __init__(self, web: WebSettings, follow: FollowSettings, engine: Engine, channels: ChannelStates):
        self.limits = web
        self.engine = engine
        self.channels = channels
        self._page = _render_page(web)
        self.follow = follow

    async def page(self, request: Request) -> Response:
        return HTMLResponse(self._page, headers=SECURITY_HEADERS)

    async def ask(self, request: Request) -> Response:
        """Answer {"question": ..., "k": ...} with the same object as `ask --json`."""
        try:
            data = json.loads(await read_body(request, self.limits.max_body_bytes))
        except (ValueError, UnicodeDecodeError, RecursionError):      # RecursionError: nested too deep
            raise HTTPException(400, replies.API_BAD_JSON) from None
        if not isinstance(data, dict):
            raise HTTPException(400, replies.API_BAD_JSON)
        question = data.get("question")
        if question is not None and not isinstance(question, str):
            raise HTTPException(400, replies.API_QUESTION_NOT_TEXT)
        if not question or not question.strip():
            raise HTTPException(400, replies.API_NO_QUESTION)
        if not _encodable(question):
            raise HTTPException(400, replies.API_BAD_CHARACTERS)
        question = question.strip()
        if len(question) > self.limits.max_question_chars:
            raise HTTPException(422, replies.API_QUESTION_TOO_LONG.format(limit=self.limits.max_question_chars))
        k = data.get("k")
        if k is not None and (not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= MAX_K):
            raise HTTPException(400, replies.API_BAD_K)
        client = request.client.host if request.client else "-"
        asked = await self.engine.ask(question, channel="web", user_id=client, k=k, gone=request.is_disconnected)
        if asked is None:                        # the client went away while the question waited: nobody to tell
            return Response(status_code=499)
        return JSONResponse(asked.answer.to_json(question))

    async def issues(self, request: Request) -> Response:
        rows = await self.engine.io(self.engine.issues)
        keys = ("key", "date", "number", "source_name", "articles", "ingested_at")
        return JSONResponse({"issues": [{k: row[k] for k in keys} for row in rows]})

    async def article(self, request: Request) -> Response:
        """Return the full text of the article a citation names (issue date and title)."""
        date, title = request.query_params.get("date", ""), request.query_params.get("title", "")
        if not (title and _iso_date(date)):
            raise HTTPException(400, replies.API_ARTICLE_PARAMS)
        found = await self.engine.io(self.engine.find_article, date, title)
        if found is None:
            raise HTTPException(404, replies.API_NO_ARTICLE)
        return JSONResponse({"date": found.issue_date.isoformat(), "unit": found.unit, "title": found.title,
                             "text": found.body, "event_dates": [d.isoformat() for d in found.event_dates]})

    async def feed(self, request: Request) -> Response:
        """Atom feed of every article, or of the articles the topic ``q`` matches; newest first.

        ``?from=<question>`` (the page's 订阅这个话题 under an answer) redirects to the question's topic."""
        asked = request.query_params.get("from", "").strip()
        if asked:
            if not _encodable(asked) or len(asked) > self.limits.max_question_chars:
                raise HTTPException(400, replies.API_BAD_CHARACTERS)
            topic = await self.engine.io(self.engine.question_topic, asked)
            return RedirectResponse(f"/feed.xml?q={quote(topic or asked[:self.follow.max_topic_chars])}", 303)
        topic = " ".join(self.engine.topic_words(request.query_params.get("q", "")))
        if not _encodable(topic):
            raise HTTPException(400, replies.API_BAD_CHARACTERS)
        if len(topic) > self.follow.max_topic_chars:
            raise HTTPException(422, replies.FOLLOW_TOO_LONG.format(n=len(topic), limit=self.follow.max_topic_chars))
        base = self.follow.public_url.rstrip("/") or str(request.base_url).rstrip("/")
        xml = await self.engine.io(self.engine.feed, topic, base, self.follow.feed_entries)
        return Response(xml, media_type="application/atom+xml; charset=utf-8")

    async def healthz(self, request: Request) -> Response:
        """Report whether the index is loaded, how many issues it holds, when one was last ingested, and the
        state of every channel (a channel that is retrying does not make the process unhealthy); 503 with the
        reason when the served generation's files are damaged (sizes each call, checksums every
        ``GenerationHealth.deep_every_s`` or with ``?deep=1``). Never waits behind answers."""
        channels = {"channels": self.channels.snapshot()}
        try:
            body = await self.engine.io(self.engine.health, request.query_params.get("deep") == "1")
        except BulletinBotError as exc:
            return JSONResponse({"status": "error", "index_loaded": False, "error": exc.user_message} | channels, 503)
        return JSONResponse(body | channels, 503 if body["status"] != "ok" else 200)


def _render_page(web: WebSettings) -> str:
    """Fill the page template with the strings from bot/replies.py (the static files hold no Chinese)."""
    strings = {"placeholder": replies.WEB_PLACEHOLDER, "send": replies.WEB_SEND,
               "examplesLabel": replies.WEB_EXAMPLES_LABEL, "examples": list(replies.EXAMPLE_QUESTIONS),
               "thinking": replies.WEB_THINKING, "sources": replies.WEB_SOURCES, "nearest": replies.WEB_NEAREST,
               "sourcesHeader": replies.SOURCES_HEADER, "loadingArticle": replies.WEB_LOADING_ARTICLE,
               "networkError": replies.WEB_NETWORK_ERROR, "noArticle": replies.API_NO_ARTICLE,
               "subscribeTopic": replies.WEB_SUBSCRIBE_TOPIC, "maxQuestionChars": web.max_question_chars}
    template = string.Template((STATIC / "index.html").read_text(encoding="utf-8"))
    return template.substitute(title=html.escape(replies.WEB_TITLE), subtitle=html.escape(replies.WEB_SUBTITLE),
                               subscribe_all=html.escape(replies.WEB_SUBSCRIBE_ALL),
                               strings=json.dumps(strings, ensure_ascii=False).replace("</", "<\\/"))


async def _http_error(request: Request, exc: HTTPException) -> Response:
    return JSONResponse({"error": exc.detail}, status_code=exc.status_code, headers=exc.headers)


def _encodable(text: str) -> bool:
    """Return whether text is valid Unicode (JSON's \\ud800 escapes decode to lone surrogates, which are not)."""
    try:
        text.encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


def _iso_date(text: str) -> bool:
    try:
        dt.date.fromisoformat(text)
        return len(text) == 10
    except ValueError:
        return False


async def _bot_error(request: Request, exc: BulletinBotError) -> Response:
    """503 while no index can be served (damaged, built differently, being written); anything else is a 500."""
    log.error("%s on %s: %s", type(exc).__name__, request.url.path, exc.user_message)
    if isinstance(exc, (IndexCorrupt, IndexMismatch, IndexBusy)):
        return JSONResponse({"error": exc.user_message}, status_code=503)
    return JSONResponse({"error": replies.API_SERVER_ERROR}, status_code=500)


class ServerErrors:
    """The one handler for unexpected errors: log the traceback, tell the client a generic 500, nothing more."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = False

        async def tracking_send(message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)
        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            # one line for the operator (where and what); the whole traceback only with -v
            frame = traceback.extract_tb(exc.__traceback__)[-1]
            log.error("unhandled %s on %s %s: %s (%s:%d)", type(exc).__name__, scope.get("method"),
                      scope.get("path"), str(exc)[:200], Path(frame.filename).name, frame.lineno)
            log.debug("traceback", exc_info=True)
            if not started:
                await JSONResponse({"error": replies.API_SERVER_ERROR}, status_code=500)(scope, receive, send)


async def run_web(sections: WebSections, engine: Engine, channels: ChannelStates | None = None) -> None:
    """Serve the app with uvicorn until cancelled."""
    app = build_app(sections, engine, channels)
    web = sections.web
    # access_log off: WeChat puts the user's openid in the query string, and raw ids never go to logs
    server = uvicorn.Server(uvicorn.Config(app, host=web.host, port=web.port, access_log=False, log_level="info"))
    log.info("web page and API: open http://%s:%d", web.host, web.port)
    task = asyncio.ensure_future(server.serve())
    try:
        await asyncio.shield(task)
    except asyncio.CancelledError:
        server.should_exit = True
        await task
        raise
