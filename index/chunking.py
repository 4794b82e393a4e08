"""Articles -> chunks: cut inside one article at sentence ends, each carrying title and issue date."""
from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass

from langchain_text_splitters import RecursiveCharacterTextSplitter

from corpus.models import Article
from index.settings import ChunkingSettings

# Paragraph, then sentence ends, then clause marks: a chunk never ends mid-sentence unless a
# sentence alone is longer than the chunk size.
SEPARATORS = ["\n", "。", "！", "？", "；", "，", ""]
_SENTENCE = re.compile(r"[^。！？；\n]+[。！？；]?")


@dataclass(frozen=True)
class Chunk:
    """One passage of one article, with what it needs to be cited."""

    article_key: tuple[str, int]     # (issue key, article position)
    seq: int
    title: str
    issue_date: dt.date
    text: str                        # the passage shown as evidence: title + the article's sentences

    @property
    def embed_text(self) -> str:
        """Return the text that is embedded and keyword-indexed (issue date prefixed)."""
        return f"{self.issue_date.isoformat()} {self.text}"

    @property
    def hash(self) -> str:
        return hashlib.sha256(self.embed_text.encode("utf-8")).hexdigest()


def make_splitter(settings: ChunkingSettings) -> RecursiveCharacterTextSplitter:
    """Build LangChain's recursive splitter with Chinese sentence separators."""
    return RecursiveCharacterTextSplitter(
        separators=SEPARATORS, chunk_size=settings.size, chunk_overlap=settings.overlap,
        keep_separator="end", strip_whitespace=True)


def chunk_article(article: Article, issue_key: str, issue_date: dt.date,
                  splitter: RecursiveCharacterTextSplitter) -> list[Chunk]:
    """Split one article; every chunk after the first gets the headline put back in front."""
    pieces = splitter.split_text(article.text) or [article.title]
    chunks = []
    for seq, piece in enumerate(pieces):
        text = piece if piece.startswith(article.title) else f"{article.title}\n{piece}"
        chunks.append(Chunk((issue_key, article.position), seq, article.title, issue_date, text))
    return chunks


@dataclass(frozen=True)
class Sentence:
    """One sentence of an article: the unit an answer quotes, embedded to find the ones that answer."""

    article_key: tuple[str, int]
    seq: int
    text: str

    @property
    def embed_text(self) -> str:
        return self.text

    @property
    def hash(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()


def split_sentences(text: str) -> list[str]:
    """Cut text into sentences at 。！？； and line ends."""
    return [s.strip() for s in _SENTENCE.findall(text) if s.strip()]


def article_sentences(article: Article, issue_key: str) -> list[Sentence]:
    """Return the body sentences of an article (the headline when it has no body)."""
    texts = split_sentences(article.body) or [article.title]
    return [Sentence((issue_key, article.position), seq, text) for seq, text in enumerate(texts)]
