"""Dataclasses a bulletin file becomes: an ``Issue`` holding ``Article``s."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Article:
    """One news item (or the lead article) of an issue."""

    title: str                      # headline, cleaned ("南阳市第六人民医院组织无偿献血活动")
    body: str                       # text after the headline; paragraphs joined by "\n"
    unit: str                       # issuing unit from the closing "（…）" line, without brackets; "" if none
    position: int                   # 0 = lead article, then 1, 2, ... in issue order
    event_dates: tuple[dt.date, ...] = ()   # dates mentioned in title/body, year from the issue

    @property
    def text(self) -> str:
        """Return headline and body as one text."""
        return f"{self.title}\n{self.body}" if self.body else self.title


@dataclass(frozen=True)
class Issue:
    """One bulletin issue: its metadata and articles."""

    date: dt.date                   # from the masthead ("南阳市卫健体委办公室 2025 年 7 月 15 日")
    number: str                     # issue number as printed ("2024 年第 89 期" -> "2024-89"), "" if absent
    source_name: str                # file name the issue came from
    content_hash: str               # sha256 of the file bytes
    articles: tuple[Article, ...] = field(default_factory=tuple)

    @property
    def key(self) -> str:
        """Return the identity of the issue: its date (one issue per date)."""
        return self.date.isoformat()
