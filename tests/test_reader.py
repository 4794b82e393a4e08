"""The fitted reader: answer types by class, the lead line, the model file, the fit command, end to end."""
from __future__ import annotations

import json
import re

import numpy as np
import pytest
from click.testing import CliRunner

from bot.answer import Answerer
from bot.reader.features import SENTENCE_FEATURES, named_places
from bot.reader.listing import LISTING_FEATURES
from bot.reader.model import ANSWER_CHARS, LEAD_CHARS, MAX_SUPPORT, MIN_SUPPORT_CHARS, ReaderModel, choose, fit_lines, lead_line, trim_clauses
from bot.reader.types import answer_types
from corpus.errors import BulletinBotError
from tests.conftest import TODAY, settings_for

# Per answer type: questions (several forms) that ask for it, sentences that show it, and ones that do not.
TYPE_CASES = {
    "count": (["一共来了多少人", "有几支队伍参赛", "献了多少毫升血", "办了几场讲座"],
              ["共有13支球队参赛。", "累计献血21200毫升。", "举办讲座三场。"], ["活动圆满结束。"]),
    "duration": (["培训持续了多长时间", "比赛打了几天", "处方能开多久"],
                 ["培训为期3天。", "处方用药时间延长至12周。", "连续两个月开展巡诊。"], ["专家进行了讲解。"]),
    "date": (["义诊是哪天办的", "几号开的会", "什么时候结营的"],
             ["7月9日，夏令营圆满结营。", "会议于17日召开。"], ["会议在市疾控中心召开。"]),
    "place": (["在哪办的", "比赛地点是什么地方", "去的哪个学校"],
              ["在县体育中心举行。", "专家团队走进丁河镇第一初级中学。"], ["比赛圆满落幕。"]),
    "who": (["谁拿了冠军", "哪个队第一名", "是哪位专家讲的"],
            ["欢乐队斩获冠军。", "主任牛海军进行授课。"], ["比赛吸引了众多爱好者。"]),
    "means": (["怎么签约", "如何预约护士上门", "咋操作的"],
              ["居民通过扫码即可签约。", "采取线上预约、线下服务的模式。"], ["签约居民满意度高。"]),
    "enumeration": (["都有哪些项目", "包括什么内容", "每天给老人弄啥"],
                    ["设置了跑步、跳绳、踢毽子等项目。", "一是加强培训，二是完善制度。"], ["活动取得圆满成功。"]),
    "percent": (["满意度百分之几", "覆盖率是多少", "占比多少"],
                ["满意度提升至96%。", "覆盖率达百分之九十。"], ["满意度明显提升。"]),
    "age": (["多大的孩子能参加", "几岁以下", "年龄有要求吗"],
            ["面向3岁以下婴幼儿。", "服务对象为65周岁以上老人。"], ["服务对象为辖区居民。"]),
    "night": (["晚上有人看着吗", "周末开门不", "节假日有没有服务"],
              ["提供24小时健康监护。", "节假日照常服务。"], ["工作日提供服务。"]),
    "phone": (["电话是多少", "有没有联系方式", "热线号码多少"],
              ["咨询电话0377-63123456。", "拨打12320热线。"], ["欢迎来电咨询。"]),
    "price": (["要多少钱", "收费吗", "费用怎么算", "一学期学费多少", "挂号费是多少", "进去锻炼收不收钱"],
              ["每次收费30元。", "全程免费。"], ["价格合理。"]),
    "address": (["地址在哪", "具体位置在哪条路", "坐几路车能到", "在哪条街上", "开在哪条大道"],
                ["位于中州路123号。", "在仲景路与工业路交叉口。"], ["位于城区。"]),
    "hours": (["几点开门", "开放时间是什么", "营业时间几点到几点"],
              ["上午8:00开诊。", "每天9点开放。"], ["全天开放。"]),
    "app": (["用哪个app", "有小程序吗", "关注哪个公众号"],
            ["下载“健康镇平”App即可。", "通过“豫健护理到家”小程序预约。"], ["线上即可办理。"]),
    "next_date": (["下一期什么时候报名", "专家下一次来邓州义诊是哪天", "下回啥时候再去公园摆摊", "第三轮巡讲打算啥时候开始"],
                  ["第三届比赛将于8月中旬举行。", "下一期培训班计划于10月开班。"],
                  ["7月9日，夏令营圆满结营。", "下一步，将继续开展此类活动。"]),
    "person": (["主任叫什么名字", "负责人是谁", "院长是谁", "那个队员叫啥", "工会主席叫什么名字", "院长姓什么"],
               ["主任牛海军进行讲解。", "由张晨凯副主任主持。"], ["专家团队进行讲解。"]),
}


def test_every_answer_type_in_the_data_file_is_covered_here():
    assert {t.name for t in answer_types().types} == set(TYPE_CASES)


@pytest.mark.parametrize("name", sorted(TYPE_CASES))
def test_answer_type_asks_and_shows_by_class(name):
    kind = next(t for t in answer_types().types if t.name == name)
    asks, shows, plain = TYPE_CASES[name]
    assert all(kind.asked_by(q) for q in asks), [q for q in asks if not kind.asked_by(q)]
    assert all(kind.shown_in(s) for s in shows), [s for s in shows if not kind.shown_in(s)]
    assert not any(kind.shown_in(s) for s in plain)


@pytest.mark.parametrize("question, asked", [
    ("下半年要抓哪几项工作？", {"enumeration"}),            # which items: not a count
    ("要求在哪五个关键方面突破？", {"enumeration"}),        # which five: not a place
    ("一共有几项工作？", {"count"}),
    ("试点放在哪个县？", {"place"}),
])
def test_which_n_things_is_an_enumeration_not_a_count_or_a_place(question, asked):
    assert {t.name for t in answer_types().asked(question)} == asked


@pytest.mark.parametrize("question", ["下一步有啥打算", "往后每年要扩多少", "上一次义诊是哪天"])
def test_a_plan_or_a_past_date_is_not_a_next_date(question):
    assert "next_date" not in {t.name for t in answer_types().asked(question)}


@pytest.mark.parametrize("question", ["活动的主题叫啥来着", "那个指挥体系叫啥", "口号叫什么", "那个App叫什么名字"])
def test_a_name_asked_of_a_thing_is_not_a_persons_name(question):
    assert "person" not in {t.name for t in answer_types().asked(question)}


def test_ordinal_points_are_found_when_they_count_up_from_one():
    from bot.reader.model import ordinal_series
    sentences = ["会议强调，重点抓好以下工作：一是以质量安全为核心，筑牢根基；", "二是以患者需求为导向，改善服务；",
                 "据介绍，医院还开展了义诊。", "三是以学科人才为引擎，增强后劲。"]
    assert ordinal_series(sentences) == [(0, "一是以质量安全为核心"), (1, "二是以患者需求为导向"),
                                         (3, "三是以学科人才为引擎")]
    assert ordinal_series(["二是加强培训。", "三是开展检查。"]) == []          # no 一是: not a run
    assert ordinal_series(["一是加强培训。"]) == []                            # one point is not a list


def test_an_enumeration_asked_is_answered_with_the_points_heads(fitted):
    answer = fitted.answer("南阳市第三人民医院上半年总结会说下半年重点抓哪几项工作？")
    assert not answer.abstained
    head = re.sub(r"\s", "", answer.text)[:200]
    for point in ("一是以质量安全为核心", "二是以患者需求为导向", "三是以学科人才为引擎", "四是以精细化管理为抓手"):
        assert point in head


@pytest.mark.parametrize("question, unit", [("献了多少毫升", "毫升"), ("来了几支队伍", "支"), ("一年考几回", "回"),
                                            ("签约了多少人", "人"), ("有几个团队", "个"), ("办了多少场", "场")])
def test_the_unit_a_count_question_names(question, unit):
    assert answer_types().asked_unit(question) == unit


def test_no_unit_when_none_is_named():
    assert answer_types().asked_unit("满意度是多少？") is None


def test_places_data_file_names_the_counties_by_class():
    assert named_places("镇平县和淅川县、邓州市") == {"镇平", "淅川", "邓州"}
    assert named_places("南阳市第六人民医院") == set()


def test_bundled_model_loads_and_matches_the_features():
    model = ReaderModel.load()
    assert model.sentence.features == SENTENCE_FEATURES
    assert len(model.sentence.coef) == len(SENTENCE_FEATURES)
    assert 0.0 < model.threshold < 1.0
    assert model.listing is not None and model.listing.features == LISTING_FEATURES
    assert 0.0 < model.listing_threshold < 1.0


def test_a_model_without_a_listing_part_loads_and_lists_by_the_rule(tmp_path):
    data = ReaderModel.load().to_json()
    del data["listing"], data["listing_threshold"]
    path = tmp_path / "model.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    assert ReaderModel.load(path).listing is None


def test_a_model_fitted_on_other_features_is_a_clear_error(tmp_path):
    data = ReaderModel.load().to_json()
    data["sentence"]["features"] = data["sentence"]["features"][:-1]
    path = tmp_path / "model.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(BulletinBotError, match="bulletin-bot fit"):
        ReaderModel.load(path)
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(BulletinBotError, match="cannot be read"):
        ReaderModel.load(path)


@pytest.fixture(scope="module")
def fitted(built_data_dir, embedder):
    return Answerer(settings_for(built_data_dir, answer={"reader": "fitted"}), embedder, today=TODAY)


def test_lead_line_is_verbatim_short_and_holds_the_number(fitted):
    ev = fitted.prepare("镇平县卫健委组建了多少个家庭医生服务团队？").evidence
    long = next(s for s in ev.sentences if "186个" in s)
    assert len(long) > LEAD_CHARS
    lead = lead_line(long, ev)
    assert len(lead) <= LEAD_CHARS + 4
    assert "186个家庭医生服务团队" in lead
    for part in lead.split("……"):
        assert part in long


def test_lead_line_keeps_the_clauses_with_the_facts_and_marks_what_it_left_out(fitted):
    # the place asked for opens the sentence, the count closes it, a long clause between answers neither
    ev = fitted.prepare("推进会在哪里开的？有多少人参加？").evidence
    filler = "会议围绕规范医疗美容服务、加强行业监管、落实机构主体责任、畅通群众投诉渠道等内容进行了深入细致的交流和讨论"
    long = f"7月17日，推进会在市疾控中心北区召开，{filler}，相关单位负责人共50余人参加。"
    assert len(long) > LEAD_CHARS
    lead = lead_line(long, ev)
    assert "北区召开" in lead and "50余人参加" in lead and filler not in lead
    assert "……" in lead and len(lead) <= LEAD_CHARS + 4
    for part in filter(None, lead.split("……")):
        assert part in long


def test_lead_line_without_any_clause_matching_is_the_sentence_start_not_a_stub(fitted):
    ev = fitted.prepare("What services were offered on site?").evidence
    long = "近日，" + "，".join(f"第{n}项服务内容丰富多样并深受群众欢迎" for n in range(1, 8)) + "。"
    lead = lead_line(long, ev, 60)
    assert lead.startswith("近日，第1项服务") and 40 <= len(lead) <= 64


def test_supporting_sentences_cover_the_other_things_asked():
    # sentence 1 is likelier than 2 but repeats what the lead covers (ask clause 0); 2 covers clause 1
    p = np.array([0.9, 0.6, 0.5, 0.1], dtype=np.float32)
    article_of = np.zeros(4, dtype=np.int64)
    ask_cover = np.array([[1, 0], [1, 0], [0, 1], [0, 0]], dtype=np.float32)
    assert choose(p, article_of, None, ask_cover)[:2] == (0, 2)
    assert choose(p, article_of, None, None, diversity=0.0)[:2] == (0, 1)
    assert choose(p, article_of, None, ask_cover[:, :1])[:2] == (0, 1)   # one thing asked: by p


def test_a_sentence_likely_to_answer_a_clause_not_yet_answered_is_chosen_over_a_likelier_repeat():
    # per-clause probabilities: sentence 1 answers clause 0 again (the lead did), sentence 2 clause 1
    p = np.array([0.9, 0.7, 0.5, 0.1], dtype=np.float32)
    by_ask = np.array([[0.9, 0.1], [0.7, 0.1], [0.1, 0.5], [0.1, 0.1]], dtype=np.float32)
    assert choose(p, np.zeros(4, dtype=np.int64), None, by_ask)[:2] == (0, 2)


def test_up_to_three_supporting_quotes_are_chosen():
    p = np.array([0.9, 0.8, 0.7, 0.6, 0.5], dtype=np.float32)
    assert choose(p, np.zeros(5, dtype=np.int64)) == (0, 1, 2, 3)


def _ev(sentences, question="问题"):
    from types import SimpleNamespace
    return SimpleNamespace(sentences=sentences, question=SimpleNamespace(text=question), asked=())


def test_short_quotes_all_fit_in_what_a_resident_reads():
    sentences = ["7月12日，专家团队走进黑龙集卫生院。", "参加义诊的有五官科专家。", "康复治疗部医师进行指导。", "骨科专家现场答疑。"]
    lines, chosen = fit_lines(_ev(sentences), (0, 1, 2, 3))
    assert chosen == (0, 1, 2, 3) and lines == tuple(sentences)


def test_long_supporting_quotes_share_what_is_left_and_the_last_is_left_out_when_too_short():
    clause = "专家团队深入基层开展健康服务"
    long = "，".join([clause] * 8) + "。"
    lines, chosen = fit_lines(_ev([long] * 4), (0, 1, 2, 3))
    assert sum(len(line) + 5 for line in lines) <= ANSWER_CHARS + 2 and chosen == (0, 1, 2, 3)
    assert len(lines[0]) > len(lines[1]) >= MIN_SUPPORT_CHARS          # the supports are trimmed, not the lead
    lines, chosen = fit_lines(_ev([long] * 4), (0, 1, 2, 3), budget=140)
    assert len(lines) < 4 and chosen == (0, 1, 2, 3)[:len(lines)]      # too little room: the last is left out
    # a short supporting quote stays whole while a long one is trimmed
    lines, _ = fit_lines(_ev([long, "骨科专家现场答疑。", long]), (0, 1, 2))
    assert lines[1] == "骨科专家现场答疑。" and len(lines[2]) < len(long)


def test_with_no_kind_of_answer_recognised_trimming_keeps_the_clause_that_prints_a_list():
    sentence = "对孕产妇，家庭医生团队提供全面的孕期健康管理服务，涵盖产前检查、产后家访、新生儿护理指导。"
    assert "产前检查" in trim_clauses(sentence, "签个家庭医生孕期能管些啥", (), 30)


def test_reader_reads_each_ask_clause_in_fitting_as_in_answering(fitted):
    from bot.reader.model import sentence_scores
    ev = fitted.prepare("唐河第二届气排球赛是谁承办的？打了几天，第三名是哪个队？").evidence
    p, by_ask = sentence_scores(fitted.reader.sentence, ev)
    assert by_ask.shape == (len(p), len(ev.X_asks)) and (p >= by_ask.max(axis=1) - 1e-6).all()
    answer = fitted.answer("唐河第二届气排球赛是谁承办的？打了几天，第三名是哪个队？")
    text = re.sub(r"\s+", "", answer.text)[:200]
    assert "7天" in text and "疾风队" in text and "老年人体育协会" in text


def test_fitted_answer_leads_with_the_fact_and_cites(fitted):
    answer = fitted.answer("市六院7月那次组织献血，一共献了多少毫升？")
    assert not answer.abstained
    first = answer.text.splitlines()[0]
    assert "21200" in first and first.endswith("〔1〕")
    assert "2025-07-15 · 南阳市第六人民医院 · 南阳市第六人民医院组织无偿献血活动" in answer.text
    quoted = re.findall(r"“(.+?)”〔(\d)〕", answer.text)
    assert len(quoted) <= MAX_SUPPORT
    articles = fitted.store.all_articles()
    for q, n in quoted:      # each supporting quote is verbatim from the article its marker cites (…… marks a cut)
        article = articles[answer.cited[int(n) - 1].article_id]
        for part in filter(None, q.split("……")):
            assert re.sub(r"\s", "", part) in re.sub(r"\s", "", article.text)


def test_sources_list_the_cited_articles_first_each_once(fitted):
    answer = fitted.answer("唐河县气排球比赛谁得了冠军", k=5)
    cited = [s.article_id for s in answer.cited]
    ids = [s.article_id for s in answer.sources]
    assert ids[:len(cited)] == cited and len(set(ids)) == len(ids)


@pytest.mark.parametrize("question", ["镇平县家庭医生团队的联系电话是多少？", "淅川第二医共体的地址在哪条路？",
                                      "市六院献血点几点开门？"])
def test_fitted_reader_abstains_when_the_attribute_asked_is_not_printed(fitted, question):
    answer = fitted.answer(question)
    assert answer.abstained and answer.nearest is not None


def test_fitted_reader_abstains_for_another_county(fitted):
    answer = fitted.answer("桐柏县家庭医生签约用的是哪个App？")
    assert answer.abstained


def test_fit_command_fits_a_model_that_loads(built_data_dir, tmp_path):
    from bot.cli import cli
    rows = [{"q": "市六院献血一共献了多少毫升？", "gold": [["累计献血21200毫升"]], "answer_must": [["21200"]]},
            {"q": "唐河气排球比赛冠军是哪个队？", "gold": [["最终欢乐队斩获冠军"]], "answer_must": [["欢乐队"]]},
            {"q": "洛阳的医保卡在南阳能刷吗？", "gold": [], "answer_must": []},
            {"q": "唐河县今年办了哪些球类比赛？", "gold": [["最终欢乐队斩获冠军"], ["唐河县“汉酱杯”乒乓球比赛圆满落下帷幕"]],
             "answer_must": [["气排球"], ["乒乓球"]]}]
    qfile = tmp_path / "q.jsonl"
    qfile.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows), encoding="utf-8")
    out = tmp_path / "model.json"
    result = CliRunner().invoke(cli, ["--data-dir", str(built_data_dir), "fit", "--no-cv", "--synthetic", "60",
                                      "--out", str(out), str(qfile)])
    assert result.exit_code == 0, result.output
    model = ReaderModel.load(out)
    assert model.meta["questions"] == 4 and np.isfinite(model.sentence.coef).all()
    assert model.listing is not None and np.isfinite(model.listing.coef).all()


def _listed(answerer, question):
    p = answerer.prepare(question, features=False)
    return [a.title for a in answerer._matching_articles(p.question, p.hits, p.weights, p.store, p.retriever)]


@pytest.mark.parametrize("question, wanted, unwanted", [
    # a day and the bureau's own field (卫健系统): every article of that day, not the one naming 卫健
    ("6月19日那天卫健系统有什么事", ["市口腔医院防汛", "第六人民医院赴西峡县"], []),
    # a union's Dragon Boat party at the blood station is not a hospital's blood drive
    ("哪些医院组织过献血？", ["第六人民医院组织无偿献血", "第二附属医院开展无偿献血"], ["中心血站工会"]),
])
def test_the_fitted_listing_model_decides_which_articles_are_listed(fitted, question, wanted, unwanted):
    titles = "\n".join(_listed(fitted, question))
    assert all(w in titles for w in wanted), titles
    assert not any(u in titles for u in unwanted), titles


def test_the_listing_threshold_is_what_lists(fitted):
    from dataclasses import replace
    saved = fitted.reader
    try:
        fitted.reader = replace(saved, listing_threshold=1.01)
        assert _listed(fitted, "哪些医院组织过献血？") == []
        fitted.reader = replace(saved, listing_threshold=0.0)
        assert len(_listed(fitted, "哪些医院组织过献血？")) > 4
    finally:
        fitted.reader = saved


def test_answerability_weights_keep_their_declared_signs():
    from bot.reader.fit import ANSWERABLE_SIGNS, _fit_logistic
    from bot.reader.features import QUESTION_FEATURES
    assert set(ANSWERABLE_SIGNS) == set(QUESTION_FEATURES)
    model = ReaderModel.load().answerable
    for name, coef in zip(model.features, model.coef):
        assert coef * ANSWERABLE_SIGNS[name] >= -1e-6, name
    # two copies of one signal, the second noisier: unconstrained, a weight can come out negative
    rng = np.random.default_rng(0)
    x = rng.normal(size=400)
    X = np.c_[x + 0.1 * rng.normal(size=400), x + 0.1 * rng.normal(size=400)]
    y = (x + 0.3 * rng.normal(size=400) > 0).astype(float)
    X[:, 1] = X[:, 0] * 1.5 - 0.5 * x + rng.normal(size=400) * 0.05
    fitted = _fit_logistic(X, y, ("a", "b"), C=100.0, signs={"a": 1, "b": 1})
    assert (fitted.coef >= 0).all()
    free = _fit_logistic(X, y, ("a", "b"), C=100.0)
    assert (free.coef < 0).any()     # the constraint is what keeps it in line


def test_a_chinese_question_the_article_hardly_covers_abstains_an_english_one_is_left_to_the_score():
    from bot.reader.features import QUESTION_FEATURES
    from bot.reader.model import below_floor
    model = ReaderModel.load()
    assert 0 < model.coverage_floor < 0.5            # fitted by `bulletin-bot fit`, stored in model.json
    row = np.zeros(len(QUESTION_FEATURES), dtype=np.float32)
    row[QUESTION_FEATURES.index("art_cov")] = model.coverage_floor / 2
    assert below_floor(row, model.coverage_floor)
    row[QUESTION_FEATURES.index("latin")] = 0.9      # English: its words are not printed in the bulletins
    assert not below_floor(row, model.coverage_floor)
    row[QUESTION_FEATURES.index("latin")] = 0.0
    row[QUESTION_FEATURES.index("art_cov")] = model.coverage_floor * 2
    assert not below_floor(row, model.coverage_floor)


def test_a_county_article_is_marked_when_the_question_names_no_county(fitted):
    col = SENTENCE_FEATURES.index("other_place")
    for question, expected in (("家庭医生签约服务团队有多少个？", 1.0), ("镇平县家庭医生签约服务团队有多少个？", 0.0)):
        ev = fitted.prepare(question).evidence
        rows = [i for i, o in enumerate(ev.article_of) if "镇平" in ev.hits[o].article.unit]
        assert rows and {float(ev.X[i, col]) for i in rows} == {expected}, question
