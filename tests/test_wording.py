"""bot.wording: traditional characters and fullwidth forms become the bulletins' own script before reading."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from bot.wording import normalize, to_halfwidth, to_simplified


@pytest.mark.parametrize("traditional, simplified", [
    ("鎮平縣家庭醫生簽約", "镇平县家庭医生签约"),                    # mainland traditional
    ("臺灣的醫院", "台湾的医院"),                                     # Taiwan variant 臺
    ("衛生監督所對醫院開展檢查", "卫生监督所对医院开展检查"),
    ("獻血傳遞希望", "献血传递希望"),
    ("互聯網+護理服務", "互联网+护理服务"),
    ("鄧州義診", "邓州义诊"),
])
def test_traditional_characters_become_simplified(traditional, simplified):
    assert to_simplified(traditional) == simplified
    assert normalize(traditional) == simplified


@pytest.mark.parametrize("text", ["镇平县家庭医生签约了多少人？", "市六院7月那次组织献血，一共献了多少毫升？",
                                  "hello 123", "", "互联网+护理服务"])
def test_simplified_text_comes_back_unchanged(text):
    assert normalize(text) == text


@pytest.mark.parametrize("wide, narrow", [
    ("７月１２日", "7月12日"), ("７．１２", "7.12"), ("ＨＰＶ疫苗", "HPV疫苗"), ("９５％", "95%"),
    ("互联网＋护理", "互联网+护理"), ("９月２５日～２６日", "9月25日~26日"), ("电话　1234", "电话 1234"),
])
def test_fullwidth_ascii_becomes_halfwidth(wide, narrow):
    assert to_halfwidth(wide) == narrow
    assert normalize(wide) == narrow


def test_chinese_punctuation_is_kept():
    assert normalize("哪些医院？献血，多少！（市六院）：；") == "哪些医院？献血，多少！（市六院）：；"


def test_one_converter_serves_many_threads():
    texts = ["鎮平縣家庭醫生簽約", "獻血傳遞希望", "衛生監督所"] * 40
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(normalize, texts))
    assert results == [normalize(t) for t in texts]


# --- through the answerer: the same answer as the simplified, halfwidth question ---------------

SAME = [
    ("鎮平縣家庭醫生簽約了多少人？", "镇平县家庭医生签约了多少人？"),
    ("鎮平縣家庭醫生簽約能在手機上弄嗎？", "镇平县家庭医生签约能在手机上弄吗？"),
    ("市六院7月那次組織獻血，一共獻了多少毫升？", "市六院7月那次组织献血，一共献了多少毫升？"),
    ("哪些醫院組織過獻血？", "哪些医院组织过献血？"),
    ("７月１２日那天有哪些活動？", "7月12日那天有哪些活动？"),
    ("唐河縣氣排球比賽哪個隊拿了第一？", "唐河县气排球比赛哪个队拿了第一？"),
]


@pytest.mark.parametrize("asked, simplified", SAME)
def test_traditional_and_fullwidth_questions_answer_as_simplified(answerer, asked, simplified):
    got, expected = answerer.answer(asked), answerer.answer(simplified)
    assert not expected.abstained
    assert got.text == expected.text and got.abstained == expected.abstained


# --- personal context through the answerer: the same articles as without it --------------------

PERSONAL = ["俺爹今年七十三了，", "我今年65岁，", "我妈去年刚做完手术，", "老人家今年都八十多了，"]
ASKED_2024 = "方城县卫健委“服务百姓健康行动”义诊是在哪儿办的？"     # answered from the 2024 issue


@pytest.mark.parametrize("context", PERSONAL)
def test_personal_context_does_not_narrow_the_articles(answerer, context):
    bare = answerer.answer(ASKED_2024)
    assert not bare.abstained and bare.cited[0].date.year == 2024
    told = answerer.answer(context + ASKED_2024)
    assert not told.abstained
    assert [s.article_id for s in told.cited] == [s.article_id for s in bare.cited]


# --- a dated question with nothing else the bulletins print -----------------------------------

@pytest.mark.parametrize("question, dated", [
    ("7月9号南阳这边有啥动静", True), ("7月17日市里开了个什么会", True), ("7月12日都有哪些活动", True),
    ("7月9号都发生了啥", True), ("6月18日那天有啥事", True), ("七月九号有什么新闻", True),
    ("7月12日市六院做了什么", False), ("7月12日那天献血的情况", False), ("6月17号卫健委和体育中心搞了什么活动", False),
    ("有啥动静", False), ("最近有啥动静", False), ("最近一期有什么新闻", False),
])
def test_dated_only_by_class(answerer, question, dated):
    from bot.question import Question, expand_aliases
    from bot.wording import dated_only
    store, retriever = answerer.refresh()
    read = Question.read(expand_aliases(normalize(question)), answerer.today, retriever.newest_issue())
    assert dated_only(read, store) is dated
    if dated:
        assert retriever.articles_on(read.when)


def test_resident_voices_rewrite_mechanically():
    from pypinyin import Style, lazy_pinyin

    from bot.measure.voices import PREAMBLES, preamble, slip, traditional
    from index.keywords import word_frequency
    question = "西峡的青少年足球联赛一共来了多少运动员？"
    assert traditional(question) == "西峽的青少年足球聯賽一共來了多少運動員？"
    assert preamble(question).endswith(question) and preamble(question)[:-len(question)] in PREAMBLES
    slipped = slip(question)
    changed = [(a, b) for a, b in zip(question, slipped) if a != b]
    assert len(slipped) == len(question) and len(changed) == 1           # one character, by sound
    (typed, meant), = [(b, a) for a, b in changed]
    assert lazy_pinyin(typed, style=Style.TONE3) == lazy_pinyin(meant, style=Style.TONE3)
    at = slipped.index(typed)
    assert not any(word_frequency(slipped[i:i + 2]) for i in (at - 1, at))   # no longer a word of the dictionary
