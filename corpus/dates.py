"""Dates in bulletin text, and the time range a question asks about.

``find_dates`` lists the calendar days an article mentions ("7 月 12 日", "9月25日~26日",
"6·14世界献血者日"); ``parse_time_range`` turns a question's "六月中旬", "上个月", "7.12",
"最近一期" or "最近" into a ``TimeRange``. Both are pure functions of their arguments.

A day or month without a year ("7月12日", "七月中旬", "7.12", "6月") means the latest such day or
month on or before today *and* not after the newest issue: the bulletins' latest one, not this
calendar year's. Relative words (上个月, 今年, 最近, 上周) stay relative to today; a range that lies
wholly after the newest issue carries that issue's date (``after_newest``) so an abstention can say so.
Personal context — an age ("俺爹今年七十三了"), a duration ("退休三年了"), a life event
("去年刚做完手术", "我今年…") — is no time range; the time words next to it still are.
"""
from __future__ import annotations

import calendar
import re
from dataclasses import dataclass, replace
from datetime import date, timedelta
from functools import lru_cache
from importlib import resources

_CN_DIGITS = {"〇": 0, "零": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5,
              "六": 6, "七": 7, "八": 8, "九": 9}
_NUM = r"(?:\d{1,2}|[一二三四五六七八九十两〇零]{1,3})"
_S = r"\s*"
_FULLWIDTH = str.maketrans("０１２３４５６７８９．", "0123456789.")
VAGUE_DAYS = 90              # "最近" prefers roughly the last quarter

# --- find_dates ---------------------------------------------------------------------

_YMD = rf"(?:(?P<y>\d{{4}}){_S}年{_S})?(?P<m>{_NUM}){_S}月{_S}(?P<d>{_NUM}){_S}[日号]"
_RANGE_END = rf"{_S}(?:~|～|－|—{{1,2}}|–|-|至|到){_S}(?:(?P<m2>{_NUM}){_S}月{_S})?(?P<d2>{_NUM}){_S}[日号]"
_DAY_SPAN = rf"(?:(?P<y3>\d{{4}}){_S}年{_S})?(?P<m3>{_NUM}){_S}月{_S}(?P<d3>{_NUM}){_S}(?:~|～|－|—{{1,2}}|–|-){_S}(?P<d4>{_NUM}){_S}[日号]"
_MENTION = re.compile(rf"{_DAY_SPAN}|{_YMD}(?:{_RANGE_END})?")
# "6·14世界献血者日": month·day only counts when a named day or festival follows.
_DOT_DAY = re.compile(r"(?<![\d.])(\d{1,2})[·•・](\d{1,2})(?!\d)[”\"」]?\s*(?=[\u4e00-\u9fff]{0,12}?(?:日|节))")
_MAX_SPAN_DAYS = 62


def cn_number(token: str) -> int | None:
    """Convert "12", "十二" or "二十六" into an int, or None when it is no number."""
    if token.isdigit():
        return int(token)
    if not token or any(ch not in _CN_DIGITS and ch != "十" for ch in token):
        return None
    if "十" not in token:
        return _CN_DIGITS[token] if len(token) == 1 else None
    tens, _, ones = token.partition("十")
    if len(tens) > 1 or len(ones) > 1:
        return None
    return (_CN_DIGITS[tens] if tens else 1) * 10 + (_CN_DIGITS[ones] if ones else 0)


def _day(year: int, month: int | None, day: int | None) -> date | None:
    """Return the date, or None when the parts make no calendar day."""
    try:
        return date(year, month, day) if month and day else None
    except ValueError:
        return None


def _place_year(month: int, day: int, year: int, near: date | None) -> int:
    """Choose the year of a yearless day: ``year``, moved when ``near`` is far away."""
    if near is None:
        return year
    guess = _day(year, month, day)
    if guess and (guess - near).days > 183:
        return year - 1
    if guess and (near - guess).days > 183:
        return year + 1
    return year


def _days_between(start: date | None, end: date | None) -> list[date]:
    """List every day from start to end inclusive; only start when the span is implausible."""
    if start is None:
        return []
    if end is None or not 0 < (end - start).days <= _MAX_SPAN_DAYS:
        return [start]
    return [start + timedelta(days=n) for n in range((end - start).days + 1)]


def _mention_days(match: re.Match, year: int, near: date | None) -> list[date]:
    """Expand one date mention (single day or range) into its days."""
    g = match.groupdict()
    if g["m3"]:
        month, d1, d2 = cn_number(g["m3"]), cn_number(g["d3"]), cn_number(g["d4"])
        y = int(g["y3"]) if g["y3"] else _place_year(month or 0, d1 or 0, year, near)
        return _days_between(_day(y, month, d1), _day(y, month, d2))
    month, d1 = cn_number(g["m"]), cn_number(g["d"])
    y = int(g["y"]) if g["y"] else _place_year(month or 0, d1 or 0, year, near)
    start = _day(y, month, d1)
    if not g["d2"]:
        return [start] if start else []
    month2 = cn_number(g["m2"]) if g["m2"] else month
    return _days_between(start, _day(y, month2, cn_number(g["d2"])))


def find_dates(text: str, year: int, *, near: date | None = None) -> tuple[date, ...]:
    """Return every calendar day mentioned in text, sorted and unique.

    Days without a year take ``year``; given ``near`` (the issue date), a yearless day more
    than half a year away from it moves to the neighbouring year ("12月30日" in January).
    """
    text = text.translate(_FULLWIDTH)
    days: set[date] = set()
    for match in _MENTION.finditer(text):
        days.update(_mention_days(match, year, near))
    for match in _DOT_DAY.finditer(text):
        month, day = int(match.group(1)), int(match.group(2))
        found = _day(_place_year(month, day, year, near), month, day)
        days.update([found] if found else [])
    return tuple(sorted(days))


# --- parse_time_range ---------------------------------------------------------------

@dataclass(frozen=True)
class TimeRange:
    """The period a question asks about; ``end`` is inclusive."""

    start: date
    end: date
    label: str                 # how the period reads back to a person ("2025年6月中旬")
    vague: bool = False        # "最近": prefer recent articles, never drop older ones
    latest_issue: bool = False  # "最近一期": the newest issue, whatever its date
    after_newest: date | None = None   # the newest issue's date, when the range begins after it

    def contains(self, day: date) -> bool:
        """Tell whether day lies inside the range."""
        return self.start <= day <= self.end


_LATEST = re.compile(r"(最近|最新|这|本|当前)(的)?一?期(?!间)|最新(的)?(简报|动态)")
_VAGUE = re.compile(r"最近|近期|近来|这一?阵子?|这段(时间|日子)|前段时间|前一?阵子|最新")
_RECENT_N = re.compile(rf"(?:最近|近|过去)({_NUM}|几)(个)?(天|日|周|星期|礼拜|个月|月|年)(?!\s*{_NUM}\s*[日号])")
_FULL_DATE = re.compile(r"(?<!\d)(\d{4})\s*(?:年|[-/.])\s*(\d{1,2})\s*(?:月|[-/.])\s*(\d{1,2})\s*[日号]?(?!\d)")
_MONTH_DAY = re.compile(rf"(?<!\d)({_NUM})\s*月\s*({_NUM})\s*[日号]")
_DOTTED_DAY = re.compile(r"(?<![\d.·])(\d{1,2})\s*[.·•・]\s*(\d{1,2})(?![\d.]|\s*[万亿千百元%％个人名次岁小分秒米公里倍])")
_YEAR_WORDS = {"今年": 0, "本年": 0, "去年": -1, "上一年": -1, "前年": -2}
_YEAR = r"(?:(?<!\d)(?P<y>\d{4})\s*年|(?P<rel>今年|本年|去年|前年))"
_PART = r"(?P<part>上旬|中旬|下旬|月初|初|月底|底|月末|末|月中)?"
_MONTH = re.compile(rf"{_YEAR}?\s*(?<![\d个第])(?P<m>{_NUM})\s*月份?{_PART}(?!\s*[\d一二三四五六七八九十]+\s*[日号])")
_YEAR_ONLY = re.compile(rf"{_YEAR}(?:度|全年)?(?P<half>上半年|下半年)?")
_PARTS = {"上旬": (1, 10), "初": (1, 10), "月初": (1, 10), "中旬": (11, 20), "月中": (11, 20),
          "下旬": (21, 31), "底": (21, 31), "月底": (21, 31), "末": (21, 31), "月末": (21, 31)}


def parse_time_range(question: str, today: date, newest: date | None = None) -> TimeRange | None:
    """Return the period a question asks about, or None when it names no time.

    ``newest`` is the newest indexed issue's date: a day or month without a year is placed in the
    latest year where it is on or before both today and ``newest``.
    """
    q = mask_personal(question.translate(_FULLWIDTH))
    limit = min(today, newest) if newest is not None else today
    for parse in (_latest_issue, _full_date, _month_day, _dotted_day, _recent_n,
                  _month, _relative_month, _relative_week, _relative_day, _year, _vague):
        found = parse(q, today, limit) if parse in _YEARLESS else parse(q, today)
        if found:
            if newest is not None and not found.latest_issue and found.start > newest:
                found = replace(found, after_newest=newest)
            return found
    return None


# --- personal context: ages, durations and life events are no time range --------------------

_MASK = "※"
_YEAR_WORD = r"(?:今年|去年|前年|本年|明年)"
_RELATIVE_WORD = rf"(?:{_YEAR_WORD}|上上个?月|上个?月|这个?月|本月|上周|这周|本周|上星期|前几天|前些天|前阵子|昨天|前天)"
# "今年七十三了", "今年65岁", "去年刚满60", "今年都八十多了": a year word, then an age.
_AGE = re.compile(rf"{_YEAR_WORD}(?=\s*(?:刚刚|刚|才|已经|已|都|就|也|还|快|将近|整|满|到){{0,3}}\s*"
                  rf"(?:\d{{1,3}}|[一二三四五六七八九十两]{{1,4}})\s*(?:多|来)?\s*"
                  rf"(?:周?岁(?!\s*(?:以上|以下|及以上|及以下|以内))|了|啦|咯|[，,。？?！!；;]|$))")
# "怀孕五个月了", "退休三年了", "腰疼近两个月了", "住院十来天了": a duration that has run till now.
_DURATION = re.compile(rf"(?:最近|近|过去|这|有|已经|已)?\s*(?:{_NUM}|几|半)\s*(?:多|来)?\s*"
                       rf"(?:个\s*(?:多|来)?\s*(?:月|星期|礼拜)|年|天|周|星期|礼拜)\s*(?:多|来|半)?\s*(?:了|啦)")
# "去年刚做完手术", "上个月才出院", "今年已经退休": a relative word, then an adverb of a life event,
# in a clause that asks nothing.
_LIFE_EVENT = re.compile(rf"{_RELATIVE_WORD}(?=\s*(?:刚刚|刚|才|已经))")
_ASKING = re.compile(r"多少|几|哪|什么|啥|谁|怎么|怎样|如何|吗|么|有没有|是否|能不能|可不可以|呢")
_CLAUSE = re.compile(r"[^，,。？?！!；;]+")


@lru_cache(maxsize=1)
def _person_words() -> tuple[str, ...]:
    """Return the words naming the asker or their family (corpus/person_words.txt)."""
    text = resources.files("corpus").joinpath("person_words.txt").read_text(encoding="utf-8")
    words = {w for line in text.splitlines() if not line.startswith("#") for w in line.split()}
    return tuple(sorted(words, key=len, reverse=True))


def _after_person(q: str, start: int) -> bool:
    """Tell whether the text just before ``start`` names a person: "俺爹今年", "我妈去年"."""
    before = q[max(0, start - 6):start].rstrip()
    return before.endswith(_person_words())


def mask_personal(q: str) -> str:
    """Blank out the time words that only tell about the asker's life, not about an event."""
    spans: list[tuple[int, int]] = [m.span() for m in _AGE.finditer(q)]
    spans += [m.span() for m in _DURATION.finditer(q)]
    for clause in _CLAUSE.finditer(q):
        if _ASKING.search(clause.group(0)):
            continue
        spans += [(clause.start() + m.start(), clause.start() + m.end())
                  for m in _LIFE_EVENT.finditer(clause.group(0))]
    spans += [m.span() for m in re.finditer(_YEAR_WORD, q) if _after_person(q, m.start())]
    if not spans:
        return q
    chars = list(q)
    for start, end in spans:
        chars[start:end] = _MASK * (end - start)
    return "".join(chars)


def _latest_issue(q: str, today: date) -> TimeRange | None:
    """Match "最近一期" / "最新一期" / "这一期": the newest issue."""
    if _LATEST.search(q):
        return TimeRange(date.min, date.max, "最近一期", latest_issue=True)
    return None


def _vague(q: str, today: date) -> TimeRange | None:
    """Match "最近" / "近期" / "这段时间": a soft preference for the last months."""
    if _VAGUE.search(q):
        return TimeRange(today - timedelta(days=VAGUE_DAYS), today, "最近", vague=True)
    return None


def _recent_n(q: str, today: date) -> TimeRange | None:
    """Match "最近一个月" / "近7天" / "过去两周": a span ending today."""
    m = _RECENT_N.search(q)
    if not m:
        return None
    n = 3 if m.group(1) == "几" else cn_number(m.group(1))
    unit = m.group(3)
    days = {"天": 1, "日": 1, "周": 7, "星期": 7, "礼拜": 7, "个月": 30, "月": 30, "年": 365}[
        "个月" if m.group(2) and unit == "月" else unit]
    if not n or n * days > 3660:
        return None
    return TimeRange(today - timedelta(days=n * days - 1), today, m.group(0))


def _single_day(day: date | None) -> TimeRange | None:
    """Wrap one day as a range."""
    return TimeRange(day, day, f"{day.year}年{day.month}月{day.day}日") if day else None


def _full_date(q: str, today: date) -> TimeRange | None:
    """Match "2024年9月26号" / "2024-09-26"."""
    m = _FULL_DATE.search(q)
    return _single_day(_day(*map(int, m.groups()))) if m else None


_LOOK_BACK_YEARS = 12      # how far back a yearless day may land (29 February needs up to 8)


def _last_occurrence(month: int | None, day: int | None, limit: date) -> date | None:
    """Return the latest date with this month and day on or before ``limit``."""
    for year in range(limit.year, limit.year - _LOOK_BACK_YEARS, -1):
        found = _day(year, month, day)
        if found and found <= limit:
            return found
    return None


def _month_day(q: str, today: date, limit: date) -> TimeRange | None:
    """Match "7月12日" / "七月十二号" without a year: the latest such day so far."""
    m = _MONTH_DAY.search(q)
    if not m:
        return None
    year_m = re.search(rf"{_YEAR}\s*$", q[:m.start()])
    month, day = cn_number(m.group(1)), cn_number(m.group(2))
    if year_m:
        return _single_day(_day(_year_of(year_m, today), month, day))
    return _single_day(_last_occurrence(month, day, limit))


def _dotted_day(q: str, today: date, limit: date) -> TimeRange | None:
    """Match "7.12" / "6·14" when it cannot be a decimal or a quantity."""
    m = _DOTTED_DAY.search(q)
    if not m:
        return None
    return _single_day(_last_occurrence(int(m.group(1)), int(m.group(2)), limit))


def _year_of(m: re.Match, today: date) -> int:
    """Return the year a "2024年" / "去年" group names."""
    return int(m.group("y")) if m.group("y") else today.year + _YEAR_WORDS[m.group("rel")]


def _month_range(year: int, month: int, part: str | None, label: str) -> TimeRange | None:
    """Return a whole month, or its 上旬/中旬/下旬 slice."""
    if not 1 <= month <= 12 or not 1 <= year <= 9999:
        return None
    last = calendar.monthrange(year, month)[1]
    first_day, last_day = _PARTS.get(part or "", (1, last))
    return TimeRange(date(year, month, first_day), date(year, month, min(last_day, last)),
                     f"{year}年{month}月{part or ''}".replace("月月", "月"))


def _month(q: str, today: date, limit: date) -> TimeRange | None:
    """Match "6月" / "六月中旬" / "去年九月" / "2024年9月下旬"; without a year, the latest that began by ``limit``."""
    for m in _MONTH.finditer(q):
        month = cn_number(m.group("m"))
        if not month or not 1 <= month <= 12:
            continue
        if m.group("y") or m.group("rel"):
            return _month_range(_year_of(m, today), month, m.group("part"), m.group(0))
        first_day = _PARTS.get(m.group("part") or "", (1, 31))[0]
        year = limit.year if (month, first_day) <= (limit.month, limit.day) else limit.year - 1
        return _month_range(year, month, m.group("part"), m.group(0))
    return None


_YEARLESS = {_month_day, _dotted_day, _month}


def _relative_month(q: str, today: date) -> TimeRange | None:
    """Match "上个月" / "这个月" / "本月", optionally with 上旬/中旬/下旬/初/底."""
    m = re.search(r"(上上个?|上一?个?|这一?个?|本|当)月(份)?(上旬|中旬|下旬|初|底|末|中)?", q)
    bare = re.search(r"(?<![\d一二三四五六七八九十个])月(初|底|末)", q)
    if not m and not bare:
        return None
    prefix = m.group(1) if m else ""
    back = 2 if prefix.startswith("上上") else (1 if prefix.startswith("上") else 0)
    part = m.group(3) if m else bare.group(1)
    year, month = today.year, today.month - back
    if not m and _PARTS[part][0] > today.day:
        month -= 1           # a bare "月底" asked on the 5th means last month's end
    if month < 1:
        year, month = year - 1, month + 12
    return _month_range(year, month, part, (m or bare).group(0))


def _relative_week(q: str, today: date) -> TimeRange | None:
    """Match "上周" / "这周" / "本周" as Monday-to-Sunday weeks."""
    m = re.search(r"(上上|上一?个?|这一?个?|本)(周|星期|礼拜)", q)
    if not m:
        return None
    back = 2 if m.group(1) == "上上" else (1 if m.group(1).startswith("上") else 0)
    monday = today - timedelta(days=today.weekday() + 7 * back)
    return TimeRange(monday, monday + timedelta(days=6), m.group(0))


def _relative_day(q: str, today: date) -> TimeRange | None:
    """Match "今天" / "昨天" / "前天"."""
    m = re.search(r"大前天|前天|昨天|昨日|今天|今日", q)
    if not m:
        return None
    back = {"大前天": 3, "前天": 2, "昨天": 1, "昨日": 1}.get(m.group(0), 0)
    day = today - timedelta(days=back)
    return TimeRange(day, day, m.group(0))


def _year(q: str, today: date) -> TimeRange | None:
    """Match "2024年" / "今年" / "去年上半年" as a whole year or half year."""
    m = _YEAR_ONLY.search(q)
    if not m:
        return None
    year = _year_of(m, today)
    if not 1 <= year <= 9999:
        return None
    start, end = date(year, 1, 1), date(year, 12, 31)
    if m.group("half") == "上半年":
        end = date(year, 6, 30)
    elif m.group("half") == "下半年":
        start = date(year, 7, 1)
    return TimeRange(start, end, f"{year}年{m.group('half') or ''}")
