"""Bulletin files -> text -> cleaned paragraphs -> an Issue of Articles."""
from corpus.articles import load_issue, parse_issue, split_articles
from corpus.clean import clean_text
from corpus.read import read_text

__all__ = ["load_issue", "parse_issue", "split_articles", "clean_text", "read_text"]
