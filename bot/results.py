"""What answering returns: the answer's text, whether it abstained, and the sources it cites."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Source:
    """One cited passage: which issue, which unit, which article, and the text shown as evidence."""

    title: str
    date: dt.date          # issue date
    unit: str
    text: str
    score: float
    article_id: int = 0

    def citation(self) -> str:
        """Return the one-line citation: issue date · issuing unit · article title."""
        return f"{self.date.isoformat()} · {self.unit or '（未署名）'} · {self.title}"

    def to_json(self) -> dict:
        return {"title": self.title, "date": self.date.isoformat(), "unit": self.unit,
                "text": self.text, "score": round(float(self.score), 6), "article_id": self.article_id}


@dataclass(frozen=True)
class Answer:
    """What the bot says: text (citations included), whether it abstained, and the sources best first."""

    text: str
    abstained: bool
    sources: tuple[Source, ...] = field(default_factory=tuple)
    cited: tuple[Source, ...] = field(default_factory=tuple)   # the articles the text quotes
    nearest: Source | None = None                               # an abstention's closest article

    def to_json(self, question: str) -> dict:
        return {"question": question, "answer": self.text, "abstained": self.abstained,
                "sources": [s.to_json() for s in self.sources],
                "cited": [s.to_json() for s in self.cited],
                "nearest": self.nearest.to_json() if self.nearest is not None else None}
