"""Turn a cleaned bulletin into an ``Issue`` of ``Article``s.

An issue opens with a masthead (office line, date, maybe "2024 年第 89 期"), then a lead
article under its own headline, then news items whose first sentence is their headline.
Every article closes with its issuing unit in brackets: "（南阳市第六人民医院）".
"""
from __future__ import annotations

import hashlib
import re
from datetime import date
from pathlib import Path

from corpus.clean import UNIT_LINE, clean_text
from corpus.dates import find_dates
from corpus.models import Article, Issue
from corpus.read import read_text
from corpus.errors import BadBulletin

_MASTHEAD = re.compile(
    r"^(?:南阳卫生健康体育动态|(?:\d{4}年)?第\d+期|(?:\S*办公室)?(?:\d{4}年\d{1,2}月\d{1,2}日)?"
    r"|内部资料.*|[（(]?内部资料[^）)]*[）)]|\S*办公室\s*编)$")
_DATE_LINE = re.compile(r"^(?:.{0,30}(?:办公室|期))?(\d{4})年(\d{1,2})月(\d{1,2})日$")
_NUMBER = re.compile(r"(?:(\d{4})年)?第(\d+)期")
_TRAILER = re.compile(r"^(?:报|送|发|抄送|抄报|编辑|审核|审稿|签发|校对|责任编辑|印发)[：:]")
_SENTENCE = re.compile(r"^(.{4,120}?[。！？!?])(.*)$", re.S)
_MASTHEAD_LINES = 8          # the masthead lives in the first few paragraphs
_MAX_HEADING = 60            # a headline paragraph is at most this long
_MAX_HEADLINE_PARTS = 2      # a lead headline is printed on one or two lines


def load_issue(path: Path, max_bytes: int) -> Issue:
    """Read, clean and parse one bulletin file into an Issue."""
    path = Path(path)
    text = read_text(path, max_bytes)
    content_hash = hashlib.sha256(path.read_bytes()).hexdigest()
    return parse_issue(text, path.name, content_hash)


def parse_issue(text: str, source_name: str, content_hash: str) -> Issue:
    """Parse raw or cleaned bulletin text into an Issue, or raise BadBulletin."""
    text = clean_text(text)
    head = text.split("\n")[:_MASTHEAD_LINES]
    issue_date = _masthead_date(head)
    if issue_date is None:
        raise BadBulletin(f"没有找到刊期日期：{source_name}（报头应有“2025年7月15日”这样的日期；"
                          f"no issue date in the masthead）")
    articles = split_articles(text, issue_date)
    if not articles:
        raise BadBulletin(f"没有识别出任何文章：{source_name}（每篇应以“（发稿单位）”结尾；"
                          f"no article found）")
    return Issue(issue_date, _issue_number(head), source_name, content_hash, articles)


def _masthead_date(head: list[str]) -> date | None:
    """Return the issue date from the masthead paragraphs, if one is printed there."""
    for paragraph in head:
        match = _DATE_LINE.match(paragraph)
        if match:
            try:
                return date(*map(int, match.groups()))
            except ValueError:
                continue
    return None


def _issue_number(head: list[str]) -> str:
    """Return "2024-89" for "2024年第89期", "89" for "第89期", else ""."""
    for paragraph in head:
        match = _NUMBER.search(paragraph) if len(paragraph) <= _MAX_HEADING else None
        if match:
            year, number = match.groups()
            return f"{year}-{number}" if year else number
    return ""


def split_articles(text: str, issue_date: date) -> tuple[Article, ...]:
    """Split cleaned bulletin text into articles, each closed by its unit line."""
    paragraphs = [p for p in text.split("\n") if p and not _is_furniture(p)]
    articles: list[Article] = []
    pending: list[str] = []
    for paragraph in paragraphs:
        if not UNIT_LINE.match(paragraph):
            pending.append(paragraph)
            continue
        article = _make_article(pending, paragraph[1:-1].strip(), len(articles), issue_date)
        articles.extend([article] if article else [])
        pending = []
    # Text after the last unit line counts only if it reads like an article.
    article = _make_article(pending, "", len(articles), issue_date)
    articles.extend([article] if article else [])
    return tuple(articles)


def _is_furniture(paragraph: str) -> bool:
    """Tell masthead and distribution-list paragraphs from article text."""
    return bool(_MASTHEAD.match(paragraph) or _TRAILER.match(paragraph))


def _make_article(paragraphs: list[str], unit: str, position: int,
                  issue_date: date) -> Article | None:
    """Build one article from its paragraphs, or None when they hold no headline and body."""
    if not paragraphs:
        return None
    title, body = _headline(paragraphs)
    if not title or (not body and not unit):
        return None
    dates = find_dates(f"{title}\n{body}", issue_date.year, near=issue_date)
    return Article(title, body, unit, position, dates)


def _is_heading(paragraph: str) -> bool:
    """Tell a headline paragraph (short, no full sentence) from body text."""
    return len(paragraph) <= _MAX_HEADING and not re.search(r"[。！？!?；;]", paragraph)


def _headline(paragraphs: list[str]) -> tuple[str, str]:
    """Return (title, body): a standalone headline, else the first sentence."""
    if _is_heading(paragraphs[0]):
        parts = 1
        while (parts < min(_MAX_HEADLINE_PARTS, len(paragraphs) - 1)
               and _is_heading(paragraphs[parts])
               and len(paragraphs[0]) + len(paragraphs[parts]) <= _MAX_HEADING):
            parts += 1
        return "".join(paragraphs[:parts]), "\n".join(paragraphs[parts:])
    match = _SENTENCE.match(paragraphs[0])
    if not match:        # no sentence end early on: fall back to the opening words
        return paragraphs[0][:_MAX_HEADING // 2], "\n".join(paragraphs)
    first = match.group(1).rstrip("。！？!?")
    rest = [match.group(2).strip(), *paragraphs[1:]]
    return first, "\n".join(p for p in rest if p)
