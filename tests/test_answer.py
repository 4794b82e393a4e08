"""Answers: quoted facts with citations, lists, dates, abstentions, optional generation."""
from __future__ import annotations

import re

import pytest

from bot.answer import Answerer
from bot.question import is_listing
from index.chunking import split_sentences
from tests.conftest import TODAY, settings_for
from tests.openai_standin import running_standin


def _squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


def test_answer_quotes_the_number_and_cites_issue_unit_title(answerer):
    answer = answerer.answer("市六院7月那次组织献血，一共献了多少毫升？")
    assert not answer.abstained
    assert "21200" in answer.text
    assert "2025-07-15 · 南阳市第六人民医院 · 南阳市第六人民医院组织无偿献血活动" in answer.text
    assert answer.sources[0].title == "南阳市第六人民医院组织无偿献血活动"


def test_quoted_sentences_are_verbatim_from_the_article(answerer):
    answer = answerer.answer("卧龙区的医养服务中心晚上有没有医护看着老人？")
    quotes = re.findall(r"“(.+?)”(?:〔\d〕)?\n", answer.text + "\n")
    assert quotes
    article = answerer.store.all_articles()[answer.cited[0].article_id]
    for quote in quotes:
        for sentence in quote.split("……"):
            assert _squash(sentence) in _squash(article.text)


def test_sources_are_best_first_and_limited_to_k(answerer):
    answer = answerer.answer("唐河县气排球比赛谁得了冠军", k=3)
    assert len(answer.sources) == 3
    scores = [s.score for s in answer.sources]
    assert scores == sorted(scores, reverse=True)


def test_listing_question_lists_every_matching_article_with_dates(answerer):
    answer = answerer.answer("最近南阳有哪些医院组织医护人员集体去献血了？")
    assert not answer.abstained
    assert "第六人民医院" in answer.text and "第二附属医院" in answer.text
    lines = [l for l in answer.text.splitlines() if l.startswith("· ")]
    assert len(lines) >= 2 and all(re.match(r"· \d{4}-\d{2}-\d{2}", l) for l in lines)


def test_listing_lines_are_short_verbatim_and_the_titles_come_first(answerer):
    from bot.answer import LIST_QUOTE_CHARS
    answer = answerer.answer("2025年7月12日那天有哪些活动？")
    lines = [l for l in answer.text.splitlines() if l.startswith("· ")]
    assert len(lines) >= 3
    articles = answerer.store.all_articles()
    for line, source in zip(lines, answer.cited):
        quote = line.split("〕）：", 1)[1]
        assert len(quote) <= LIST_QUOTE_CHARS + 4
        for part in filter(None, quote.split("……")):
            assert _squash(part) in _squash(articles[source.article_id].text)
    head = _squash(answer.text)[:200]
    assert sum(_squash(s.title) in head for s in answer.cited) >= 3   # three titles within what a resident reads


def test_listing_is_not_cut_at_top_k(answerer):
    answer = answerer.answer("2025年7月12日那天有哪些活动？", k=1)
    titles = {s.title for s in answer.cited}
    assert len(titles) >= 3           # events of 7月12日 are reported in more than one issue
    assert any("献血" in t for t in titles)


def test_time_question_answers_from_matching_dates_only(answerer):
    answer = answerer.answer("7月12日那天有哪些活动？")
    articles = answerer.store.all_articles()
    import datetime as dt
    for source in answer.cited:
        assert dt.date(2025, 7, 12) in articles[source.article_id].event_dates


def test_relative_dates_follow_the_reference_day(built_data_dir, embedder):
    june = Answerer(settings_for(built_data_dir), embedder, today=TODAY.replace(month=7, day=20))
    answer = june.answer("上个月有哪些献血活动？")
    assert answer.cited and all(s.date.month in (6, 7) for s in answer.cited)
    later = Answerer(settings_for(built_data_dir), embedder, today=TODAY.replace(year=2026))
    assert later.answer("上个月有哪些献血活动？").abstained


@pytest.mark.parametrize("question", [
    "南阳东站到郑州东的高铁一天有几趟？",
    "南阳现在新房大概多少钱一平？",
    "在南阳办护照去哪儿办，要带啥材料？",
])
def test_off_topic_questions_abstain(answerer, question):
    answer = answerer.answer(question)
    assert answer.abstained and "没有找到" in answer.text and not answer.cited


def test_near_miss_ordinal_abstains_and_names_the_reported_one(answerer):
    answer = answerer.answer("唐河县第三届气排球比赛什么时候开始报名？")
    assert answer.abstained
    assert "第二届" in answer.text


def test_phone_number_not_printed_abstains(answerer):
    answer = answerer.answer("豫健护理到家的客服电话是多少？")
    assert answer.abstained and "没有找到" in answer.text


@pytest.mark.parametrize("question", ["", "   ", "？？？"])
def test_empty_question_gets_a_clear_message(answerer, question):
    answer = answerer.answer(question)
    assert answer.abstained and answer.text


def test_huge_question_is_answered_without_error(answerer):
    answer = answerer.answer("献血" * 50_000)
    assert answer.text


def test_listing_detection():
    assert is_listing("哪些医院组织过献血？") and is_listing("唐河县今年办了哪些球类比赛？")
    assert not is_listing("是哪几天？") and not is_listing("一共献了多少毫升？")


def test_split_sentences_keeps_every_character():
    text = "第一句。第二句！第三句？第四；\n第五"
    assert "".join(split_sentences(text)) == text.replace("\n", "")


def test_generation_keeps_citations_and_rejects_invented_numbers(built_data_dir, embedder):
    with running_standin() as server:
        settings = settings_for(built_data_dir, generation={"enabled": True, "base_url": server.base_url,
                                                            "model": "stand-in"})
        bot = Answerer(settings, embedder, today=TODAY)
        server.reply = lambda messages: "市六院这次共有71名干部职工献血，总献血量21200毫升。"
        good = bot.answer("市六院7月那次组织献血，一共献了多少毫升？")
        assert good.text.startswith("市六院这次共有71名") and "〔1〕2025-07-15 · 南阳市第六人民医院" in good.text
        server.reply = lambda messages: "总献血量达到30000毫升。"
        bad = bot.answer("市六院7月那次组织献血，一共献了多少毫升？")
        assert "30000" not in bad.text and "21200" in bad.text
        assert len(server.requests) == 2


def test_vague_recent_prefers_new_but_keeps_older_matches(answerer):
    answer = answerer.answer("最近都有哪些义诊活动？")
    years = {s.date.year for s in answer.cited}
    assert 2024 in years and 2025 in years      # 2024-09-28 义诊 items are not dropped by "最近"


def test_price_not_printed_abstains(answerer):
    answer = answerer.answer("市八院中医药夜市体验一次推拿多少钱？")
    assert answer.abstained and "没有找到" in answer.text


def test_latest_issue_lists_its_articles(answerer):
    answer = answerer.answer("最近一期有哪些新闻？")
    assert {s.date.isoformat() for s in answer.cited} == {"2025-07-24"}
    assert len(answer.cited) == 8


def test_reference_day_comes_from_option_env_or_config(monkeypatch):
    import datetime as dt
    from bot.settings import Settings, reference_day, replace
    monkeypatch.setenv("BULLETIN_BOT_TODAY", "2025-01-02")
    assert reference_day(Settings()) == dt.date(2025, 1, 2)
    assert reference_day(Settings(), "2024-05-06") == dt.date(2024, 5, 6)
    monkeypatch.delenv("BULLETIN_BOT_TODAY")
    assert reference_day(replace(Settings(), answer={"today": "2023-03-04"})) == dt.date(2023, 3, 4)


def test_other_institution_number_abstains_and_names_the_reported_one(answerer):
    answer = answerer.answer("南阳市第九人民医院组织献血了吗？")
    assert answer.abstained and "第六人民医院" in answer.text


def test_part_of_month_lists_the_events_of_those_days(answerer):
    import datetime as dt
    answer = answerer.answer("6月中旬有哪些活动？")
    assert not answer.abstained and len(answer.cited) >= 5
    articles = answerer.store.all_articles()
    for source in answer.cited:
        days = articles[source.article_id].event_dates
        assert any(dt.date(2025, 6, 11) <= d <= dt.date(2025, 6, 20) for d in days)


def test_short_names_find_the_printed_names(answerer):
    from bot.question import expand_aliases
    assert expand_aliases("市六院组织过几次活动？") == "南阳市第六人民医院组织过几次活动？"
    answer = answerer.answer("市六院组织过几次活动？")
    assert len({s.title for s in answer.cited}) == 3          # 献血, 西峡帮扶, 端午安全检查
    assert all("第六人民医院" in s.title for s in answer.cited)


@pytest.mark.parametrize("typed, printed", [
    ("我家孩子十五岁了想去洗纹身去哪洗", "文身"),          # 纹身 / 文身: both wen2 shen1
    ("析川第二医共体办了多少场讲堂", "淅川"),               # a county's name, one character off by sound
    ("6月14号邓洲搞了个啥活动", "邓州"),
])
def test_a_word_typed_by_sound_is_read_as_the_bulletins_print_it(answerer, typed, printed):
    from bot.question import respell
    store, _ = answerer.refresh()
    assert printed in respell(typed, store)
    # and the answer cites an article that prints it: the misspelt word alone would find none
    answer = answerer.answer(typed)
    assert not answer.abstained
    assert printed in answer.cited[0].title + answer.cited[0].text


@pytest.mark.parametrize("typed", [
    "第一次去献血心里有点虚",        # 心里 is meant (general Chinese uses it more than the bulletins' 心理)
    "唐河第二届气排球赛是谁承办的",  # 赛是 is no word: the segmenter's guess across 是
    "卧龙区现在二手房均价多少",      # nothing in the bulletins sounds like 二手房 / 均价
])
def test_words_meant_as_typed_are_not_respelled(answerer, typed):
    from bot.question import respell
    store, _ = answerer.refresh()
    assert respell(typed, store) == typed
