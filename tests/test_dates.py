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
