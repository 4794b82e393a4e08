"""Read a question: its time range, whether it asks for a list, its terms and weights, what it asks for."""
from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from corpus.dates import TimeRange, cn_number, parse_time_range
from index.keywords import query_terms, sound_of, word_frequency
from index.store import IndexStore, StoredArticle

_LISTING = re.compile(r"哪些|都有什么|都有啥|有什么活动|都有谁|几次|列一下|列出|列举|哪几(?:家|个单位|所|次)|多少次")
_TIME_WORDS = re.compile(
    r"\d{4}\s*年|\d{1,2}\s*月\s*\d{1,2}\s*[日号]?|\d{1,2}\s*[日号]|(?:\d{1,2}|[一二三四五六七八九十]+)\s*月份?(?:[初底]|[上中下]旬)?|"
    r"[上中下]旬|月[初底]|上半年|下半年|"
    r"[上下本这]个?月份?|[上这本]周|今年|去年|前年|最近一期|最新一期|这一期|最近|近期|这一阵子?|这段时间|那天|当天|昨天|前天|今天")
# "第三届", "第二期", "第九人民医院": a number and the first character of what it counts.
_ORDINAL = re.compile(r"第\s*([0-9一二三四五六七八九十]+)\s*([\u4e00-\u9fff])")
_CLAUSE = re.compile(r"[^，,。？?！!；;]+")
_WH = re.compile(r"多少|几|哪|什么|啥|谁|多久|多长|多大|怎么|怎样|如何|吗|有没有|是否|能不能|行不行|可以不")
# Words that name the kind of thing asked for, not which one: they do not make an article relevant.
GENERIC = frozenset("活动 事情 事 新闻 报道 动态 工作 消息 内容 单位 医院 南阳 南阳市 市里 全市 我们 那天 当天 "
                    "出来 组织 举办 开展 参加 进行 方面 一些 这块 那块 比赛 有关".split())
# What the question asks for -> what a sentence answering it looks like.
CUES = [
    (re.compile(r"多长时间|多久|几天|多少天|几个小时"), re.compile(r"\d+\s*(?:个)?(?:小时|分钟|天|周|个月|年)|[一二三四五六七八九十]+(?:小时|天|周|个月)")),
    (re.compile(r"多少|几[个家名人次场项回轮所]|几"), re.compile(r"\d|[一二三四五六七八九十两][个家名人次场项回]")),
    (re.compile(r"哪天|几号|几月|什么时候|何时|日期|哪几天"), re.compile(r"\d{1,2}月\d{1,2}日|\d{1,2}日")),
    (re.compile(r"哪儿|哪里|在哪|什么地方|地点|哪个(?:公园|学校|地方|场馆)"), re.compile(r"在[^，。]{2,20}(?:公园|学校|馆|中心|广场|村|社区|院|区|室)|走进|来到")),
    (re.compile(r"谁|冠军|第一名|哪个队|哪支"), re.compile(r"冠军|第一名|获得|夺得|斩获")),
    (re.compile(r"多大|几岁|年龄"), re.compile(r"\d+\s*(?:岁|周岁)|婴幼儿|儿童|青少年|老年")),
    (re.compile(r"怎么|怎样|如何|什么方式|什么形式"), re.compile(r"通过|采用|采取|模式|方式|形式|结合")),
    (re.compile(r"晚上|夜里|夜间|半夜|周末|节假日"), re.compile(r"24\s*小时|夜间|全天|节假日|周末|全年")),
    (re.compile(r"哪几[块项类个方面]|哪些方面|重点"), re.compile(r"(?:[^、，。]{2,12}、){2,}")),
]
_ASKS = {
    "phone": re.compile(r"电话|热线|号码|联系方式|手机号"),
    "price": re.compile(r"多少钱|价格|价钱|收费|费用|花多少|几块钱|房价"),
}
_HAS = {
    "phone": re.compile(r"\d{3,4}[-—－]?\d{7,8}|\d{11}|热线\d+|\d{5,}"),
    "price": re.compile(r"\d+(?:\.\d+)?\s*(?:元|块)|免费"),
}


@lru_cache(maxsize=1)
def _aliases() -> tuple[tuple[str, str], ...]:
    """Return (short name, printed name) pairs, longest short name first."""
    text = resources.files("corpus").joinpath("aliases.txt").read_text(encoding="utf-8")
    pairs = [tuple(line.split("\t", 1)) for line in text.splitlines() if line and not line.startswith("#")]
    return tuple(sorted(((a.strip(), b.strip()) for a, b in pairs), key=lambda p: -len(p[0])))


def expand_aliases(question: str) -> str:
    """Replace short names people use (市六院) by the names the bulletins print (南阳市第六人民医院)."""
    for alias, name in _aliases():
        if alias in question and name not in question:
            question = question.replace(alias, name)
    return question


FUNCTION_CHAR_FREQUENCY = 100_000   # a character this common alone (是, 的, 了, 在 ...) is a word of its own


def respell(question: str, store: IndexStore) -> str:
    """Write a word the bulletins never print as the indexed word of the same sound, tones included (洗纹身 ->
    洗文身, 析川 -> 淅川): a pinyin keyboard offers both, and residents take the first.

    Only a resident's slip is respelled: a word general Chinese uses more than the bulletins' spelling (心里,
    not 心理) is meant as typed, and a word the segmenter guessed across a function character (赛是 in 球赛是谁)
    is no word at all.
    """
    sounds = {t: sound for t in query_terms(question) if (sound := sound_of(t))}
    printed = store.term_document_counts(tuple(sounds))
    for word, sound in sounds.items():
        if word in printed or word not in question:
            continue
        spelling = store.spelling_of(sound)
        if not spelling or spelling == word:
            continue
        known = word_frequency(word)
        if known and known >= word_frequency(spelling):
            continue
        if not known and any(word_frequency(c) >= FUNCTION_CHAR_FREQUENCY for c in word):
            continue
        question = question.replace(word, spelling)
    return question


def is_listing(question: str) -> bool:
    """Return whether the question asks for a list of events rather than one fact."""
    return bool(_LISTING.search(question))


def content_terms(text: str) -> tuple[str, ...]:
    """Return the terms of a question with its time expressions removed."""
    return query_terms(_TIME_WORDS.sub(" ", text))


def ask_clauses(question: str) -> list[str]:
    """Return the clauses that hold a question word; the others only say which article is meant."""
    clauses = [c.strip() for c in _CLAUSE.findall(question) if c.strip()]
    asking = [c for c in clauses if _WH.search(c)]
    return asking or clauses or [question]


class Weights:
    """IDF weights of a question's terms over the indexed chunks.

    A term no bulletin uses gets half the weight of a rare one: it may name a topic the bulletins
    lack (高铁) or be colloquial filler (偷偷); single characters count half as well.
    """

    def __init__(self, store: IndexStore, terms: tuple[str, ...]):
        n = max(store.chunk_count(), 1)
        df = store.term_document_counts(terms)
        self.unknown = frozenset(t for t in terms if not df.get(t))     # terms no indexed text uses
        self.idf = {t: (math.log((n + 1) / (df[t] + 0.5)) if df.get(t) else math.log(n + 1) / 2)
                    * (0.5 if len(t) == 1 else 1.0) for t in terms}

    def coverage(self, text: str, terms: tuple[str, ...] | None = None, skip: frozenset = frozenset()) -> float:
        """Return the IDF-weighted share of the terms (default: all) that occur in the text."""
        chosen = [t for t in (terms if terms is not None else self.idf) if t in self.idf and t not in skip]
        total = sum(self.idf[t] for t in chosen)
        if total <= 0:
            return 0.0
        low = text.lower()
        return sum(self.idf[t] for t in chosen if t in low) / total


@dataclass(frozen=True)
class Question:
    """A question as the answerer reads it."""

    text: str
    when: TimeRange | None
    listing: bool
    terms: tuple[str, ...]
    asks: tuple[tuple[str, tuple[str, ...]], ...]    # (ask clause, its terms)

    @classmethod
    def read(cls, text: str, today: dt.date, newest: dt.date | None = None) -> "Question":
        """Read a question; ``newest`` (the newest issue's date) places dates printed without a year."""
        asks = tuple((c, content_terms(c)) for c in ask_clauses(text))
        return cls(text, parse_time_range(text, today, newest), is_listing(text), content_terms(text), asks)


_INSTITUTION = re.compile(r"[\u4e00-\u9fff]{0,4}?(?:医院|学校|中学|小学)")


def _ordinals(text: str) -> list[tuple[int, str, str]]:
    """Return (number, kind, label) for each 第N… in the text; the label names an institution in full."""
    found = []
    for m in _ORDINAL.finditer(text):
        if (n := cn_number(m.group(1))) is not None:
            tail = _INSTITUTION.match(text, m.end(2))
            found.append((n, m.group(2), m.group(0) + (tail.group(0) if tail else "")))
    return found


def ordinal_mismatch(question: str, article: StoredArticle) -> str | None:
    """Return what the article reports when the question asks for another of its kind (第三届 vs 第二届)."""
    printed = _ordinals(article.text)
    for number, kind, _ in _ordinals(question):
        same_kind = [(n, label) for n, k, label in printed if k == kind]
        if same_kind and number not in {n for n, _ in same_kind}:
            return same_kind[0][1]
    return None


def missing_answer_type(question: str, article: StoredArticle) -> bool:
    """Return whether the question asks for a phone number or a price the article does not print."""
    return any(asks.search(question) and not _HAS[kind].search(article.text) for kind, asks in _ASKS.items())
