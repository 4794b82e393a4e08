"""Tests for corpus reading, cleaning and article splitting, on the five real bulletins."""
from __future__ import annotations

import hashlib
import random
import zipfile
from datetime import date
from pathlib import Path

import docx
import pymupdf
import pytest
from hypothesis import given, settings, strategies as st

from corpus import clean_text, load_issue, parse_issue, read_text, split_articles
from corpus.clean import display_width
from corpus.dates import find_dates, parse_time_range
from corpus.errors import BadBulletin

BULLETINS = Path(__file__).resolve().parent.parent / "corpus" / "bulletins"
USERDICT = BULLETINS.parent / "userdict.txt"
MAX_BYTES = 2_000_000
# Counted by hand: one article per closing "（unit）" line.
ARTICLE_COUNTS = {"2024-09-28": 8, "2025-06-04": 7, "2025-06-23": 10, "2025-07-15": 9,
                  "2025-07-24": 8}


def bulletin(name: str) -> Path:
    """Return the path of a real bulletin by its date."""
    return BULLETINS / f"{name}.txt"


def summary(issue) -> list[tuple[str, str, str]]:
    """Return (title, unit, body without paragraph breaks) per article."""
    return [(a.title, a.unit, a.body.replace("\n", "")) for a in issue.articles]


@pytest.mark.parametrize("name, count", sorted(ARTICLE_COUNTS.items()))
def test_load_issue_article_count_and_date(name, count):
    issue = load_issue(bulletin(name), MAX_BYTES)
    assert len(issue.articles) == count
    assert issue.date == date.fromisoformat(name)
    assert [a.position for a in issue.articles] == list(range(count))
    assert all(a.title and a.body and a.unit for a in issue.articles)


def test_load_issue_pins_the_2025_07_15_issue():
    issue = load_issue(bulletin("2025-07-15"), MAX_BYTES)
    lead = issue.articles[0]
    assert lead.title == "南阳市卫建体委积极构建覆盖949万人的健康服务网络"
    assert lead.body.startswith("目前，南阳市有乡镇卫生院215家、社区卫生服务中心47家、行政村卫生室")
    assert lead.unit == "委基层卫生科"
    blood = next(a for a in issue.articles if a.title == "南阳市第六人民医院组织无偿献血活动")
    assert blood.unit == "南阳市第六人民医院"
    assert blood.event_dates == (date(2025, 7, 12),)
    assert blood.body.startswith("7月12日，南阳市第六人民医院联合南阳市中心血站")
    assert issue.articles[-1].unit == "南阳市青训中心"
    assert issue.number == "" and issue.source_name == "2025-07-15.txt"
    assert issue.content_hash == hashlib.sha256(bulletin("2025-07-15").read_bytes()).hexdigest()


def test_load_issue_reads_the_2024_masthead_and_number():
    issue = load_issue(bulletin("2024-09-28"), MAX_BYTES)
    assert issue.date == date(2024, 9, 28) and issue.number == "2024-89"
    lead = issue.articles[0]
    assert lead.title == "创新推广“全链式”医养结合模式着力提升社区居家健康养老服务水平"
    assert lead.event_dates == (date(2024, 9, 25), date(2024, 9, 26))
    assert lead.unit == "委老龄健康科"
    assert issue.articles[1].title == "邓州市卫健委积极开展网络安全宣传周活动"
    assert "认真部署提高认识" in issue.articles[1].body
    assert not any("报：" in a.body or "审核" in a.body for a in issue.articles)


def test_load_issue_pins_titles_from_other_issues():
    titles = {n: [a.title for a in load_issue(bulletin(n), MAX_BYTES).articles]
              for n in ("2025-06-04", "2025-06-23", "2025-07-24")}
    assert titles["2025-06-04"][0] == "让家庭医生成为群众身边的“健康管家”"
    assert titles["2025-06-23"][0] == "南阳市多措并举积极探索加快基层医疗应急小分队建设"
    assert "邓州市卫健委组织开展“6·14世界献血者日”宣传活动" in titles["2025-06-23"]
    assert titles["2025-07-24"][0] == "淅川县创新“四联两转变”机制推进医共体建设高质高效"
    assert "南阳市“互联网+护理服务”，满足群众多样化健康需求" in titles["2025-07-24"]


def test_event_dates_expand_ranges_across_months():
    issue = load_issue(bulletin("2025-06-04"), MAX_BYTES)
    football = next(a for a in issue.articles if "足球联赛" in a.title)
    assert football.event_dates == (date(2025, 5, 31), date(2025, 6, 1))


def test_clean_text_removes_spaces_around_digits_and_cjk():
    assert clean_text("覆盖 949 万人的健康服务网络") == "覆盖949万人的健康服务网络"
    assert clean_text("南阳市卫健体委办公室 2025 年 7 月 15 日") == "南阳市卫健体委办公室2025年7月15日"
    assert clean_text("7 月 12 日，南阳") == "7月12日，南阳"


def test_clean_text_keeps_spaces_next_to_latin_words():
    assert clean_text("拉取 Docker 镜像部署。") == "拉取 Docker 镜像部署。"
    assert "推动 DIP 付费方式" in clean_text(bulletin("2025-07-24").read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", sorted(ARTICLE_COUNTS))
def test_clean_text_repairs_real_bulletins(name):
    cleaned = clean_text(bulletin(name).read_text(encoding="utf-8"))
    assert "**" not in cleaned and "—3—" not in cleaned and "—6—" not in cleaned
    assert all(p == p.strip() and p for p in cleaned.split("\n"))
    assert clean_text(cleaned) == cleaned


def test_clean_text_drops_page_markers_inside_a_paragraph():
    issue = load_issue(bulletin("2025-06-04"), MAX_BYTES)
    assert not any("—3—" in a.body for a in issue.articles)
    assert "镇平县升级了医疗卫生信息化平台" in issue.articles[0].body
    issue = load_issue(bulletin("2025-06-23"), MAX_BYTES)
    assert "集中体现了自行车队转变训练方法" in issue.articles[5].body


def test_clean_text_keeps_headings_apart_from_text():
    raw = "\n".join(bulletin("2025-07-15").read_text(encoding="utf-8").split("\n")[:40])
    assert clean_text(raw).split("\n")[:4] == [
        "南阳市卫健体委办公室2025年7月15日", "南阳市卫建体委积极构建", "覆盖949万人的健康服务网络",
        "目前，南阳市有乡镇卫生院215家、社区卫生服务中心47家、行政村卫生室5310个、社区卫生服务站95个。"
        "依托这张覆盖全域的服务网络和高效的联动机制，我市形成“预防—诊疗—管理”闭环服务体系，"
        "为949万常住居民筑起了一道健康屏障。"]


def test_clean_text_drops_running_headers_after_the_first():
    page = "南阳卫生健康体育动态\n" + "这是一行很长的正文内容，用来填满整整一行的版面宽度而不结束句子\n" * 3
    cleaned = clean_text(page * 3 + "结束。")
    assert cleaned.count("南阳卫生健康体育动态") == 1


def test_clean_text_splits_before_unit_lines():
    cleaned = clean_text("某医院开展义诊活动。9 月 26 日，专家团队到社区开展义诊\n（某医院）\n下一条。")
    assert cleaned.split("\n")[1] == "（某医院）"


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from("南阳市卫健 体委。，（）\n*—3 7月12日aZ"), max_size=120))
def test_clean_text_never_leaves_blank_paragraphs_or_bold_marks(raw):
    cleaned = clean_text(raw)
    assert "**" not in cleaned
    assert all(p.strip() == p and p for p in cleaned.split("\n")) or cleaned == ""


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60))
def test_date_parsers_never_crash(text):
    find_dates(text, 2025)
    parse_time_range(text, date(2025, 9, 20))


def test_gb18030_file_gives_the_same_articles(tmp_path):
    source = bulletin("2025-07-15")
    target = tmp_path / "2025-07-15.txt"
    target.write_bytes(source.read_text(encoding="utf-8").encode("gb18030"))
    assert load_issue(target, MAX_BYTES).articles == load_issue(source, MAX_BYTES).articles


def test_utf8_bom_and_utf16_files_are_read(tmp_path):
    text = bulletin("2025-07-24").read_text(encoding="utf-8")
    (tmp_path / "bom.txt").write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    (tmp_path / "u16.txt").write_text(text, encoding="utf-16")
    assert read_text(tmp_path / "bom.txt", MAX_BYTES) == text
    assert read_text(tmp_path / "u16.txt", MAX_BYTES) == text


def wrap(paragraph: str, columns: int = 56) -> list[str]:
    """Break a paragraph into printed lines of at most `columns` display columns."""
    lines, line = [], ""
    for ch in paragraph:
        if display_width(line + ch) > columns:
            lines.append(line)
            line = ""
        line += ch
    return lines + [line]


def write_pdf(path: Path, paragraphs: list[str], lines_per_page: int = 40) -> None:
    """Write paragraphs as a wrapped, paginated PDF with headers and page markers."""
    lines = [line for p in paragraphs for line in wrap(p)]
    doc = pymupdf.open()
    for number, first in enumerate(range(0, len(lines), lines_per_page), start=1):
        page = doc.new_page()
        page.insert_text((60, 40), "南阳卫生健康体育动态", fontname="china-s", fontsize=9)
        for row, line in enumerate(lines[first:first + lines_per_page]):
            page.insert_text((60, 70 + 18 * row), line, fontname="china-s", fontsize=11)
        page.insert_text((280, 810), f"—{number}—", fontname="china-s", fontsize=9)
    doc.save(path)


@pytest.mark.parametrize("name", ["2024-09-28", "2025-06-23", "2025-07-15"])
def test_pdf_bulletin_gives_the_same_articles(tmp_path, name):
    expected = load_issue(bulletin(name), MAX_BYTES)
    paragraphs = clean_text(bulletin(name).read_text(encoding="utf-8")).split("\n")
    target = tmp_path / f"{name}.pdf"
    write_pdf(target, paragraphs)
    assert len(pymupdf.open(target)) >= 3
    issue = load_issue(target, MAX_BYTES)
    assert issue.date == expected.date and issue.number == expected.number
    assert summary(issue) == summary(expected)


def test_docx_bulletin_gives_the_same_articles(tmp_path):
    source = bulletin("2025-06-04")
    document = docx.Document()
    for paragraph in clean_text(source.read_text(encoding="utf-8")).split("\n"):
        document.add_paragraph(paragraph)
    target = tmp_path / "2025-06-04.docx"
    document.save(target)
    assert load_issue(target, MAX_BYTES).articles == load_issue(source, MAX_BYTES).articles


def test_split_articles_without_units_keeps_a_trailing_news_item():
    text = "某县开展义诊活动。9月26日，专家到社区义诊。"
    (article,) = split_articles(text, date(2024, 9, 28))
    assert article.title == "某县开展义诊活动" and article.unit == ""
    assert article.event_dates == (date(2024, 9, 26),)


def test_parse_issue_accepts_raw_text():
    raw = bulletin("2025-07-24").read_text(encoding="utf-8")
    issue = parse_issue(raw, "x.txt", "abc")
    assert len(issue.articles) == 8 and issue.content_hash == "abc"


def png_bytes() -> bytes:
    """Return a small real PNG image."""
    return pymupdf.Pixmap(pymupdf.csRGB, pymupdf.IRect(0, 0, 8, 8), False).tobytes("png")


def zip_bomb(path: Path, size: int) -> None:
    """Write a .docx-shaped zip whose document.xml inflates to `size` bytes."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("word/document.xml", b"0" * size)


def blank_pdf(path: Path, with_image: bool) -> None:
    """Write a PDF with no text layer: an empty page or a page holding only an image."""
    doc = pymupdf.open()
    page = doc.new_page()
    if with_image:
        page.insert_image(pymupdf.Rect(50, 50, 300, 300), stream=png_bytes())
    doc.save(path)


REJECTS = {
    "empty.txt": (lambda p: p.write_bytes(b""), "文件为空"),
    "blank.txt": (lambda p: p.write_text(" \n\n\u3000 \r\n\t", encoding="utf-8"), "空白"),
    "junk.txt": (lambda p: p.write_bytes(random.Random(7).randbytes(4096)), "不是文本文件"),
    "controls.txt": (lambda p: p.write_bytes(bytes(range(1, 32)) * 50), "不是文本文件"),
    "image.txt": (lambda p: p.write_bytes(png_bytes()), "PNG"),
    "nodate.txt": (lambda p: p.write_text("南阳卫生健康体育动态\n某医院开展义诊活动。专家到社区义诊。\n（某医院）",
                                          encoding="utf-8"), "没有找到刊期日期"),
    "noarticle.txt": (lambda p: p.write_text("南阳市卫健体委办公室 2025 年 7 月 15 日\n\n报：市委。",
                                             encoding="utf-8"), "没有识别出任何文章"),
    "table.csv": (lambda p: p.write_text("a,b\n1,2", encoding="utf-8"), "无法识别的文件类型"),
    "old.doc": (lambda p: p.write_bytes(b"\xd0\xcf\x11\xe0" + b"x" * 100), "无法识别的文件类型"),
    "big.txt": (lambda p: p.write_text("南阳" * MAX_BYTES, encoding="utf-8"), "文件太大"),
    "empty-page.pdf": (lambda p: blank_pdf(p, with_image=False), "没有文字层"),
    "image-only.pdf": (lambda p: blank_pdf(p, with_image=True), "没有文字层"),
    "fake.pdf": (lambda p: p.write_text("not a pdf at all", encoding="utf-8"), "无法打开 PDF"),
    "fake.docx": (lambda p: p.write_text("not a zip", encoding="utf-8"), "不是有效的 Word 文件"),
    "bomb.docx": (lambda p: zip_bomb(p, 25 * MAX_BYTES), "解压后过大"),
}


@pytest.mark.parametrize("filename", sorted(REJECTS))
def test_load_issue_rejects_unusable_files(tmp_path, filename):
    write, message = REJECTS[filename]
    path = tmp_path / filename
    write(path)
    with pytest.raises(BadBulletin) as caught:
        load_issue(path, MAX_BYTES)
    assert message in caught.value.user_message
    assert filename in caught.value.user_message


def test_read_text_writes_nothing(tmp_path):
    source = tmp_path / "2025-07-15.txt"
    source.write_bytes(bulletin("2025-07-15").read_bytes())
    read_text(source, MAX_BYTES)
    assert [p.name for p in tmp_path.iterdir()] == ["2025-07-15.txt"]


def test_userdict_lines_are_jieba_entries():
    lines = USERDICT.read_text(encoding="utf-8").splitlines()
    words = [line.split()[0] for line in lines]
    assert 80 <= len(lines) <= 200 and len(set(words)) == len(words)
    assert all(len(line.split()) == 3 and line.split()[1].isdigit() for line in lines)
    assert {"互联网+护理服务", "豫健护理到家", "市六院", "南阳医专二附院", "八段锦"} <= set(words)


def test_parse_issue_reads_a_one_line_masthead():
    text = ("南阳卫生健康体育动态\n2024 年第 89 期 南阳市卫健体委办公室 2024 年 9 月 28 日\n"
            "某医院开展义诊活动。9月26日，专家到社区义诊。\n（某医院）")
    issue = parse_issue(text, "x.txt", "h")
    assert (issue.date, issue.number) == (date(2024, 9, 28), "2024-89")
    assert [(a.title, a.unit) for a in issue.articles] == [("某医院开展义诊活动", "某医院")]
