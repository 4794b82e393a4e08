"""Tests for corpus.dates: dates inside articles and time ranges inside questions."""
from __future__ import annotations

from datetime import date

import pytest

from corpus.dates import TimeRange, cn_number, find_dates, parse_time_range

TODAY = date(2025, 9, 20)


@pytest.mark.parametrize("text, expected", [
    ("7月12日，南阳市", [date(2025, 7, 12)]),
    ("7 月 12 日，南阳", [date(2025, 7, 12)]),
    ("2024年9月26日举行", [date(2024, 9, 26)]),
    ("2024 年 9 月 26 日举行", [date(2024, 9, 26)]),
    ("9月25日~26日，河南省", [date(2025, 9, 25), date(2025, 9, 26)]),
    ("9 月 25 日~26 日，河南省", [date(2025, 9, 25), date(2025, 9, 26)]),
    ("9月25日至26日", [date(2025, 9, 25), date(2025, 9, 26)]),
    ("9月25—26日", [date(2025, 9, 25), date(2025, 9, 26)]),
    ("5 月 31 日至 6 月 1 日", [date(2025, 5, 31), date(2025, 6, 1)]),
    ("“6·14 世界献血者日”宣传活动", [date(2025, 6, 14)]),
    ("6·14世界献血者日", [date(2025, 6, 14)]),
    ("七月十二日", [date(2025, 7, 12)]),
    # 号 as well as 日, in days and spans
    ("7月9号，南阳市第三人民医院召开", [date(2025, 7, 9)]),
    ("7 月 9 号召开", [date(2025, 7, 9)]),
    ("七月九号", [date(2025, 7, 9)]),
    ("5月31号至6月1号", [date(2025, 5, 31), date(2025, 6, 1)]),
    ("5月31日到6月1日", [date(2025, 5, 31), date(2025, 6, 1)]),
    ("6月17日至18日", [date(2025, 6, 17), date(2025, 6, 18)]),
    ("6月17号-18号", [date(2025, 6, 17), date(2025, 6, 18)]),
])
def test_find_dates_reads_days_and_ranges(text, expected):
    assert list(find_dates(text, 2025)) == expected


@pytest.mark.parametrize("text", [
    "处方用药时间延长至 12 周", "1 小时内到达现场", "提供 24 小时健康监护", "3 岁以下婴幼儿",
    "第 22 个世界献血者日", "签约常住居民 920.16 万人", "专家库人数逐年递增5%",
    "2025 年家庭医生团队", "将参加 11 月举行的粤港澳全运会", "比分6·14", "13月5日", "2月30日",
])
def test_find_dates_ignores_numbers_that_are_not_days(text):
    assert find_dates(text, 2025) == ()


def test_find_dates_is_sorted_and_unique():
    text = "7月12日开展，7月9日筹备，7 月 12 日结束。"
    assert find_dates(text, 2025) == (date(2025, 7, 9), date(2025, 7, 12))


def test_find_dates_near_moves_yearless_days_across_new_year():
    found = find_dates("12月30日召开总结会", 2025, near=date(2025, 1, 8))
    assert found == (date(2024, 12, 30),)


@pytest.mark.parametrize("token, value", [("12", 12), ("十", 10), ("十二", 12), ("二十六", 26),
                                          ("三十一", 31), ("六", 6), ("个", None), ("", None)])
def test_cn_number_reads_arabic_and_chinese_numerals(token, value):
    assert cn_number(token) == value


@pytest.mark.parametrize("question, start, end", [
    ("上个月有什么活动？", date(2025, 8, 1), date(2025, 8, 31)),
    ("上月的献血活动", date(2025, 8, 1), date(2025, 8, 31)),
    ("去年九月的义诊", date(2024, 9, 1), date(2024, 9, 30)),
    ("六月中旬有哪些比赛", date(2025, 6, 11), date(2025, 6, 20)),
    ("六月上旬", date(2025, 6, 1), date(2025, 6, 10)),
    ("2月下旬", date(2025, 2, 21), date(2025, 2, 28)),
    ("6月初", date(2025, 6, 1), date(2025, 6, 10)),
    ("6月底", date(2025, 6, 21), date(2025, 6, 30)),
    ("7月12日市六院做了什么", date(2025, 7, 12), date(2025, 7, 12)),
    ("7月12号", date(2025, 7, 12), date(2025, 7, 12)),
    ("7.12献血", date(2025, 7, 12), date(2025, 7, 12)),
    ("12月25日", date(2024, 12, 25), date(2024, 12, 25)),
    ("2024年9月26号的义诊", date(2024, 9, 26), date(2024, 9, 26)),
    ("6月有哪些比赛", date(2025, 6, 1), date(2025, 6, 30)),
    ("十二月", date(2024, 12, 1), date(2024, 12, 31)),
    ("这个月", date(2025, 9, 1), date(2025, 9, 30)),
    ("本月", date(2025, 9, 1), date(2025, 9, 30)),
    ("今年", date(2025, 1, 1), date(2025, 12, 31)),
    ("去年", date(2024, 1, 1), date(2024, 12, 31)),
    ("前年", date(2023, 1, 1), date(2023, 12, 31)),
    ("2024年有哪些义诊", date(2024, 1, 1), date(2024, 12, 31)),
    ("上周", date(2025, 9, 8), date(2025, 9, 14)),
    ("这周", date(2025, 9, 15), date(2025, 9, 21)),
    ("本周", date(2025, 9, 15), date(2025, 9, 21)),
    ("昨天", date(2025, 9, 19), date(2025, 9, 19)),
    ("前天", date(2025, 9, 18), date(2025, 9, 18)),
    ("今天", date(2025, 9, 20), date(2025, 9, 20)),
    ("最近一个月", date(2025, 8, 22), date(2025, 9, 20)),
    # time words next to personal context still count
    ("俺爹今年七十三了，去年市里有哪些义诊", date(2024, 1, 1), date(2024, 12, 31)),
    ("怀孕五个月了，7月12日有什么活动", date(2025, 7, 12), date(2025, 7, 12)),
    ("我今年65岁，六月中旬有义诊吗", date(2025, 6, 11), date(2025, 6, 20)),
    ("退休三年了，上个月有什么比赛", date(2025, 8, 1), date(2025, 8, 31)),
    ("去年刚做完手术，今年有哪些义诊", date(2025, 1, 1), date(2025, 12, 31)),
    ("今年65岁以上老人免费体检有吗", date(2025, 1, 1), date(2025, 12, 31)),
    ("今年3月有什么活动", date(2025, 3, 1), date(2025, 3, 31)),
    ("我们医院去年组织了哪些义诊", date(2024, 1, 1), date(2024, 12, 31)),
])
def test_parse_time_range_resolves_against_today(question, start, end):
    found = parse_time_range(question, TODAY)
    assert (found.start, found.end) == (start, end)
    assert not found.vague and not found.latest_issue


def test_parse_time_range_labels_the_period():
    assert parse_time_range("六月中旬", TODAY).label == "2025年6月中旬"
    assert parse_time_range("7月12日", TODAY).label == "2025年7月12日"


@pytest.mark.parametrize("question", ["最近一期讲了什么", "最新一期", "这一期有哪些单位"])
def test_parse_time_range_latest_issue(question):
    found = parse_time_range(question, TODAY)
    assert found.latest_issue and not found.vague


@pytest.mark.parametrize("question", ["最近有什么义诊", "近期的献血活动", "这一阵子", "这段时间"])
def test_parse_time_range_vague_recency(question):
    found = parse_time_range(question, TODAY)
    assert found.vague and not found.latest_issue
    assert found.end == TODAY and (TODAY - found.start).days == 90


@pytest.mark.parametrize("question", [
    "市六院组织了什么活动", "用药时间延长至12周", "1小时内到达", "24小时健康监护",
    "3岁以下婴幼儿照护", "第22个世界献血者日", "签约920.16万人", "增长5%", "家庭医生签约服务",
    "岁月如歌", "这期间有什么变化",
])
def test_parse_time_range_none_without_time(question):
    assert parse_time_range(question, TODAY) is None


def test_time_range_contains_is_inclusive():
    june = TimeRange(date(2025, 6, 1), date(2025, 6, 30), "2025年6月")
    assert june.contains(date(2025, 6, 30)) and not june.contains(date(2025, 7, 1))


# --- dates without a year: the latest the bulletins cover ------------------------------------

REAL = date(2026, 11, 29)             # a day long after the newest bundled issue
NEWEST = date(2025, 7, 24)            # the newest bundled issue


# (question, start, end, whether the range lies wholly after the newest issue) on a day long after it
@pytest.mark.parametrize("question, start, end, after", [
    # a day or month without a year: the latest one the bulletins cover
    ("7月12日那天有哪些活动？", date(2025, 7, 12), date(2025, 7, 12), False),
    ("七月十二号", date(2025, 7, 12), date(2025, 7, 12), False),
    ("7.12献血", date(2025, 7, 12), date(2025, 7, 12), False),
    ("7月24日", date(2025, 7, 24), date(2025, 7, 24), False),
    ("7月25日", date(2024, 7, 25), date(2024, 7, 25), False),        # after the newest issue: a year back
    ("12月25日", date(2024, 12, 25), date(2024, 12, 25), False),
    ("七月中旬有哪些比赛", date(2025, 7, 11), date(2025, 7, 20), False),
    ("7月下旬", date(2025, 7, 21), date(2025, 7, 31), False),
    ("6月有哪些比赛", date(2025, 6, 1), date(2025, 6, 30), False),
    ("8月", date(2024, 8, 1), date(2024, 8, 31), False),
    ("九月下旬", date(2024, 9, 21), date(2024, 9, 30), False),
    # relative words stay relative to today
    ("上个月有什么活动？", date(2026, 10, 1), date(2026, 10, 31), True),
    ("今年有哪些义诊", date(2026, 1, 1), date(2026, 12, 31), True),
    ("上周", date(2026, 11, 16), date(2026, 11, 22), True),
    ("昨天", date(2026, 11, 28), date(2026, 11, 28), True),
    ("最近一个月", date(2026, 10, 31), date(2026, 11, 29), True),
    ("2026年3月", date(2026, 3, 1), date(2026, 3, 31), True),
    ("去年有哪些义诊", date(2025, 1, 1), date(2025, 12, 31), False),
    ("2025年7月", date(2025, 7, 1), date(2025, 7, 31), False),
])
def test_dates_on_a_clock_past_the_newest_issue(question, start, end, after):
    found = parse_time_range(question, REAL, NEWEST)
    assert (found.start, found.end) == (start, end)
    assert found.after_newest == (NEWEST if after else None)


@pytest.mark.parametrize("question, start", [
    ("7月12日", date(2024, 7, 12)), ("七月中旬", date(2024, 7, 11)), ("6月", date(2025, 6, 1)),
    ("6月30日", date(2025, 6, 30)), ("7.1", date(2024, 7, 1)),
])
def test_yearless_dates_never_lie_after_today(question, start):
    # A newest issue after today (a test clock) does not move a day past today.
    assert parse_time_range(question, date(2025, 6, 30), NEWEST).start == start


def test_the_latest_issue_is_never_after_the_newest():
    assert parse_time_range("最近一期有哪些内容", REAL, NEWEST).after_newest is None


# --- personal context is no time range -----------------------------------------------------

@pytest.mark.parametrize("question", [
    # an age after 今年/去年
    "俺爹今年七十三了，腿脚不好，能约护士上门吗？", "我今年65岁，能免费体检吗", "老妈今年都八十多了，有上门服务吗",
    "他去年刚满60，能签家庭医生吗", "今年73了，行动不便怎么看病", "孩子今年三岁，去哪打疫苗",
    # a duration that has run till now
    "怀孕五个月了，去哪建档", "退休三年了，想参加健身球操", "腰疼近两个月了，哪里能看", "住院十来天了，能不能请护士上门",
    "最近三个多月了一直咳嗽，去哪看", "过去两年了还没签家庭医生",
    # a life event after a relative word, in a clause that asks nothing
    "去年刚做完手术，能约护士上门吗", "上个月才出院，家里有人照顾吗", "今年已经退休，能参加比赛吗",
    # the asker or a relative, then 今年/去年
    "我妈去年中风了，有上门护理吗", "我今年想签个家庭医生，咋弄", "俺家孩子去年查出近视，去哪里看",
])
def test_personal_context_is_no_time_range(question):
    assert parse_time_range(question, TODAY) is None
    assert parse_time_range(question, REAL, NEWEST) is None


# --- event dates printed in the body --------------------------------------------------------

@pytest.fixture(scope="module")
def retriever(built_data_dir, embedder):
    from index.retrieval import Retriever
    from index.store import IndexStore
    from index.build import index_identity
    from index.generations import Generations
    from tests.conftest import settings_for
    settings = settings_for(built_data_dir)
    store = IndexStore(Generations(built_data_dir).current(), index_identity(settings, embedder))
    return Retriever(store, embedder, settings.retrieval)


# The bundled articles whose body prints the day (issue dates differ: the events lie before them).
ON_DAY = {
    "7月9号有啥动静": {"南阳市第三人民医院召开上半年临床、医技科室工作总结暨医院经营分析会",
                  "“奔跑吧·少年”2025年南阳市青少年户外体育活动营地夏令营圆满结营"},
    "7月17日开了个什么会": {"南阳市召开加强未成年人文身治理和医美专项整治工作推进会"},
    "7月12日都有哪些活动": {"南阳市老年人体育协会健身球操专委会到西峡指导推广工作", "南阳市第六人民医院组织无偿献血活动",
                     "河南省妇幼保健院专家团赴邓州义诊", "南阳市康复医院健康义诊活动走进黑龙集卫生院"},
    "5月31号那天": {"“奔跑吧·少年”2025年西峡县足球联赛圆满落幕"},
    "6月18日": {"卧龙区卫健委举办“幼有所育”服务能力提升培训班", "南阳市卫健体委指导市口腔医院防汛工作",
               "南阳市第八人民医院深入开展安全生产暨汛期安全隐患排查工作"},
}


@pytest.mark.parametrize("question", sorted(ON_DAY))
def test_articles_on_a_day_are_every_article_printing_it(retriever, question):
    when = parse_time_range(question, REAL, retriever.newest_issue())
    found = retriever.articles_on(when)
    assert {a.title for a in found} == ON_DAY[question]
    firsts = [min(d for d in a.event_dates if when.contains(d)) for a in found]
    assert firsts == sorted(firsts)


def test_newest_issue_is_the_newest_indexed(retriever):
    assert retriever.newest_issue() == NEWEST


def test_articles_on_ignores_vague_ranges(retriever):
    assert retriever.articles_on(parse_time_range("最近有什么义诊", REAL, NEWEST)) == []


@pytest.mark.parametrize("question", ["市六院七月份组织献血，主题叫啥", "7月份有哪些义诊", "这个月份有啥活动", "六月份下旬开了什么会"])
def test_a_month_written_with_its_suffix_leaves_no_term_behind(question):
    """七月份 is a time expression whole: no stray 份 becomes a term the bulletins hardly print."""
    from bot.question import content_terms
    assert not any("份" in term or "月" in term for term in content_terms(question)), content_terms(question)
