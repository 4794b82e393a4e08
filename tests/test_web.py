"""The HTTP API and the web page, served by uvicorn on a real port, with the real answerer."""
from __future__ import annotations

import json
import logging
import re

import httpx
import pytest

from bot import replies
from bot.querylog import QueryLog
from bot.channels.web import STATIC
from index.errors import IndexCorrupt
from tests.conftest import app_for, engine_for, settings_for
from tests.wechat_standin import serve_app

BLOOD = "市六院7月那次组织献血，一共献了多少毫升？"


@pytest.fixture
def querylog(tmp_path):
    return QueryLog(tmp_path / "log", b"test-salt")


@pytest.fixture
def base_url(built_data_dir, answerer, querylog):
    with serve_app(app_for(settings_for(built_data_dir), engine_for(settings_for(built_data_dir), answerer, querylog))) as url:
        yield url


@pytest.fixture
def http(base_url):
    with httpx.Client(base_url=base_url, timeout=60) as client:
        yield client


class BrokenAnswerer:
    """An answerer whose index cannot be opened and whose answers fail (for the error paths)."""

    def refresh(self):
        raise IndexCorrupt("索引文件损坏或不完整；请运行 bulletin-bot reindex")

    def answer(self, text, k=None):
        raise RuntimeError("secret internal detail")


def test_ask_returns_the_same_object_as_ask_json(http, answerer):
    response = http.post("/api/ask", json={"question": BLOOD})
    assert response.status_code == 200
    body = response.json()
    assert body == answerer.answer(BLOOD).to_json(BLOOD)
    assert set(body) == {"question", "answer", "abstained", "sources", "cited", "nearest"}
    assert "21200" in body["answer"] and body["abstained"] is False
    assert set(body["sources"][0]) == {"title", "date", "unit", "text", "score", "article_id"}


def test_ask_takes_k_for_the_number_of_sources(http):
    body = http.post("/api/ask", json={"question": BLOOD, "k": 2}).json()
    assert len(body["sources"]) == 2


def test_ask_logs_the_question_with_a_hashed_user(http, querylog):
    http.post("/api/ask", json={"question": BLOOD})
    rows = list(querylog.db.query("SELECT * FROM queries"))
    assert [(r["channel"], r["question"]) for r in rows] == [("web", BLOOD)]
    assert rows[0]["user"] == querylog.user_hash("web", "127.0.0.1") and "127.0.0.1" not in rows[0]["user"]


def test_issues_lists_the_five_bundled_issues_newest_first(http):
    issues = http.get("/api/issues").json()["issues"]
    assert len(issues) == 5
    dates = [i["date"] for i in issues]
    assert dates == sorted(dates, reverse=True)
    assert all(i["articles"] > 0 for i in issues)


def test_healthz_reports_the_loaded_index(http):
    health = http.get("/healthz").json()
    assert health["status"] == "ok" and health["index_loaded"] is True
    assert health["issues"] == 5 and health["articles"] > 5
    assert re.match(r"\d{4}-\d\d-\d\dT", health["last_ingest"])


def test_article_returns_the_full_text_a_citation_names(http, answerer):
    cited = answerer.answer(BLOOD).cited[0]
    article = http.get("/api/article", params={"date": cited.date.isoformat(), "title": cited.title}).json()
    assert article["title"] == cited.title and article["unit"] == cited.unit
    assert "21200" in article["text"] and len(article["text"]) > len(cited.text) / 2


def test_article_unknown_is_a_json_404(http):
    response = http.get("/api/article", params={"date": "2025-01-01", "title": "没有这篇"})
    assert response.status_code == 404
    assert response.json() == {"error": replies.API_NO_ARTICLE}


@pytest.mark.parametrize("body, status, error", [
    (b"{not json", 400, replies.API_BAD_JSON),
    (b"[1, 2]", 400, replies.API_BAD_JSON),
    (b"", 400, replies.API_BAD_JSON),
    (json.dumps({"q": BLOOD}).encode(), 400, replies.API_NO_QUESTION),
    (json.dumps({"question": "   "}).encode(), 400, replies.API_NO_QUESTION),
    (json.dumps({"question": 42}).encode(), 400, replies.API_QUESTION_NOT_TEXT),
    (json.dumps({"question": ["献血"]}).encode(), 400, replies.API_QUESTION_NOT_TEXT),
    (b'{"question": "\\ud800\\u732e\\u8840"}', 400, replies.API_BAD_CHARACTERS),
    (b"[" * 100000 + b"]" * 100000, 413, replies.API_BODY_TOO_LARGE.format(limit=16384)),
    (b'{"question": ' + b"[" * 5000 + b"]" * 5000 + b"}", 400, replies.API_BAD_JSON),
    (json.dumps({"question": BLOOD, "k": 0}).encode(), 400, replies.API_BAD_K),
    (json.dumps({"question": BLOOD, "k": True}).encode(), 400, replies.API_BAD_K),
    (json.dumps({"question": "问" * 501}, ensure_ascii=False).encode(), 422,
     replies.API_QUESTION_TOO_LONG.format(limit=500)),
])
def test_ask_rejects_bad_input_with_a_json_error(http, querylog, body, status, error):
    response = http.post("/api/ask", content=body, headers={"Content-Type": "application/json"})
    assert (response.status_code, response.json()) == (status, {"error": error})
    assert querylog.db["queries"].count == 0


@pytest.mark.parametrize("params", [{}, {"title": "南阳市第六人民医院组织无偿献血活动"}, {"date": "2025-07-15"},
                                    {"date": "7月15日", "title": "南阳市第六人民医院组织无偿献血活动"}])
def test_article_without_date_and_title_is_a_400(http, params):
    response = http.get("/api/article", params=params)
    assert (response.status_code, response.json()) == (400, {"error": replies.API_ARTICLE_PARAMS})


def test_ask_rejects_an_oversized_body_with_413(http):
    question = "献血" * 5000                            # 30 000 bytes, over max_body_bytes = 16384
    response = http.post("/api/ask", json={"question": question})
    assert response.status_code == 413
    assert response.json() == {"error": replies.API_BODY_TOO_LARGE.format(limit=16384)}


def test_ask_rejects_an_oversized_streamed_body_with_413(http):
    chunks = (b"x" * 4096 for _ in range(8))            # no Content-Length: counted as it arrives
    response = http.post("/api/ask", content=chunks, headers={"Content-Type": "application/json"})
    assert response.status_code == 413 and "error" in response.json()


def test_get_on_ask_is_405(http):
    response = http.get("/api/ask")
    assert response.status_code == 405 and "error" in response.json()
    assert "POST" in response.headers["allow"]


def test_unknown_path_is_a_json_404(http):
    assert http.get("/api/nothing").status_code == 404


def test_errors_reach_clients_as_a_generic_message_without_a_traceback(built_data_dir, tmp_path, caplog):
    app = app_for(settings_for(built_data_dir), engine_for(settings_for(built_data_dir), BrokenAnswerer(), QueryLog(tmp_path / "log", b"s")))
    with serve_app(app) as url, httpx.Client(base_url=url, timeout=30) as http:
        response = http.post("/api/ask", json={"question": BLOOD})
        assert (response.status_code, response.json()) == (500, {"error": replies.API_SERVER_ERROR})
        assert "secret internal detail" not in response.text and "Traceback" not in response.text
        [logged] = [r for r in caplog.records if r.levelno >= logging.ERROR]      # once, in one line
        assert "RuntimeError" in logged.getMessage() and "/api/ask" in logged.getMessage()
        assert logged.exc_info is None and "\n" not in logged.getMessage()
        health = http.get("/healthz")
        assert health.status_code == 503 and health.json()["index_loaded"] is False
        issues = http.get("/api/issues")
        assert issues.status_code == 503 and "reindex" in issues.json()["error"]


def test_page_is_served_with_its_strings_and_no_outside_assets(http):
    page = http.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert replies.WEB_TITLE in page.text and replies.EXAMPLE_QUESTIONS[0] in page.text
    assert "$" not in page.text                           # every template field filled
    assert "default-src 'self'" in page.headers["content-security-policy"]
    for name in ("app.js", "app.css"):
        assert http.get(f"/static/{name}").status_code == 200
    for file in STATIC.iterdir():
        text = file.read_text(encoding="utf-8")
        assert not re.search(r"(https?:)?//[\w.-]+\.\w", re.sub(r"^\s*//.*$", "", text, flags=re.M)), file.name


def test_web_disabled_serves_only_healthz(built_data_dir, answerer, tmp_path):
    settings = settings_for(built_data_dir, web={"enabled": False})
    with serve_app(app_for(settings, engine_for(settings, answerer, QueryLog(tmp_path / "log", b"s")))) as url:
        assert httpx.get(url + "/healthz").status_code == 200
        assert httpx.post(url + "/api/ask", json={"question": BLOOD}).status_code == 404
