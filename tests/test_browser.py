"""The web chat page in headless Chromium (Debian's /usr/bin/chromium, driven by Playwright)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot import replies
from bot.querylog import QueryLog
from tests.conftest import app_for, engine_for, REPO, settings_for
from tests.wechat_standin import serve_app

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = REPO / "test-artifacts"
BLOOD = "市六院7月那次组织献血，一共献了多少毫升？"

if not CHROMIUM.exists():
    pytest.skip("no /usr/bin/chromium (install it with: apt-get install -y chromium)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is in the [test] extra")


@pytest.fixture
def page(built_data_dir, answerer, tmp_path):
    app = app_for(settings_for(built_data_dir), engine_for(settings_for(built_data_dir), answerer, QueryLog(tmp_path / "log", b"s")))
    with serve_app(app) as url, sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        page = browser.new_page(viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True)
        page.base_url = url
        page.requested = []
        page.errors = []
        page.on("request", lambda request: page.requested.append(request.url))
        page.on("pageerror", lambda error: page.errors.append(str(error)))
        page.on("console", lambda msg: page.errors.append(msg.text) if msg.type == "error" else None)
        try:
            yield page
        finally:
            browser.close()


def test_browser_asks_sees_the_cited_answer_and_expands_a_citation(page):
    expect = sync_api.expect
    page.goto(page.base_url + "/")
    expect(page.locator(".chip")).to_have_count(len(replies.EXAMPLE_QUESTIONS))
    page.fill("#question", BLOOD)
    page.press("#question", "Enter")
    expect(page.locator(".row.me .bubble").last).to_have_text(BLOOD)
    answer = page.locator(".row.bot .bubble").last
    expect(answer.locator(".answer")).to_contain_text("21200", timeout=60_000)
    citation = answer.locator(".cite").first
    expect(citation.locator("summary")).to_contain_text("2025-")
    citation.locator("summary").click()
    expect(citation.locator(".article-text")).to_contain_text("21200", timeout=30_000)
    full = citation.locator(".article-text").inner_text()
    assert len(full) > len(answer.locator(".answer").inner_text()) / 2
    assert answer.locator("a.feed").get_attribute("href").startswith("/feed.xml?from=")     # 订阅这个话题
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "web-chat.png"), full_page=True)
    assert all(url.startswith(page.base_url) for url in page.requested), page.requested
    assert page.errors == []


def test_browser_example_question_is_asked_by_a_tap(page):
    expect = sync_api.expect
    page.goto(page.base_url + "/")
    page.locator(".chip", has_text=replies.EXAMPLE_QUESTIONS[3]).click()
    expect(page.locator(".row.me .bubble").last).to_have_text(replies.EXAMPLE_QUESTIONS[3])
    answer = page.locator(".row.bot .bubble").last
    expect(answer.locator(".answer")).to_contain_text("献血", timeout=60_000)
    assert answer.locator(".cite").count() >= 2                   # a listing cites every matching article
    expect(page.locator("#send")).to_be_enabled()


def test_browser_abstention_opens_its_nearest_article(page, answerer):
    question = "唐河县第三届气排球比赛谁拿了冠军？"               # only the 第二届 was reported
    nearest = answerer.answer(question).nearest
    assert nearest is not None
    expect = sync_api.expect
    page.goto(page.base_url + "/")
    page.fill("#question", question)
    page.press("#question", "Enter")
    answer = page.locator(".row.bot .bubble").last
    expect(answer).to_have_class(re.compile("abstained"), timeout=60_000)
    box = answer.locator(".nearest")
    expect(box.locator(".sources-label")).to_have_text(replies.WEB_NEAREST)
    box.locator("summary").click()
    expect(box.locator(".article-title")).to_have_text(nearest.title, timeout=30_000)
    assert len(box.locator(".article-text").inner_text()) > 50
    assert page.errors == []
