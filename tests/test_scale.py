"""FAISS index type by size (exact below a threshold, HNSW above), and the scale benchmark at a tiny N."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bot.measure import scale as bench_scale
from index.build import build_index, index_identity, ingest_files
from index.generations import Generations
from index.store import IndexStore, all_vectors, index_kind, sized_index
from bot.settings import replace
from index.settings import VectorIndexSettings
from tests.conftest import BULLETINS, settings_for

pytestmark = pytest.mark.slow          # HNSW indexes and the scale benchmark build their own indexes (minutes on 2 cores)

SMALL = {"exact_below": 100, "hnsw_m": 16, "ef_construction": 80, "ef_search": 128}


def _clustered(count: int, seed: int = 0) -> np.ndarray:
    """Return unit vectors around a few hundred centres, like passages of recurring news."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(300, 384)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    return bench_scale._perturbed(centres, count, rng)


def test_sized_index_is_exact_below_the_threshold_and_hnsw_from_it():
    vectors = _clustered(150)
    ids = np.arange(1000, 1150)
    assert index_kind(sized_index(ids[:99], vectors[:99], VectorIndexSettings(**SMALL))) == "flat"
    assert index_kind(sized_index(ids, vectors, VectorIndexSettings(**SMALL))) == "hnsw"


def test_hnsw_recall_at_10_against_exact_search():
    vectors = _clustered(4000)
    index = sized_index(np.arange(4000) * 3 + 7, vectors, VectorIndexSettings(**SMALL))
    assert index_kind(index) == "hnsw"
    assert bench_scale.recall_at_10(index, _clustered(200, seed=5)) >= 0.98


def test_all_vectors_reads_back_ids_and_vectors_of_hnsw():
    vectors = _clustered(300)
    ids = np.arange(300)[::-1].copy() + 50
    got_ids, got = all_vectors(sized_index(ids, vectors, VectorIndexSettings(**SMALL)))
    assert list(got_ids) == list(ids)
    np.testing.assert_allclose(got, vectors, atol=1e-6)


@pytest.fixture
def hnsw_data_dir(tmp_path, embedder) -> Path:
    """Two real issues indexed with a threshold low enough for HNSW."""
    settings = settings_for(tmp_path / "data", vector_index={"exact_below": 20})
    corpus = Generations(settings.data_dir).corpus_dir
    corpus.mkdir(parents=True)
    for name in ("2025-06-04.txt", "2025-06-23.txt"):
        (corpus / name).write_bytes((BULLETINS / name).read_bytes())
    build_index(settings, embedder)
    return settings.data_dir


def _open(data_dir: Path, embedder) -> IndexStore:
    settings = settings_for(data_dir)
    return IndexStore(Generations(data_dir).current(), index_identity(settings, embedder))


def _consistent(store: IndexStore) -> None:
    """Every live FAISS id is a chunk, every chunk has a vector, and no chunk has a dead id."""
    ids, _ = all_vectors(store.vectors)
    dead = {r[0] for r in store.db.execute("SELECT id FROM dead_vectors")}
    chunk_ids = {r[0] for r in store.db.execute("SELECT id FROM chunks")}
    assert sorted(set(ids) - dead) == sorted(chunk_ids) and len(ids) == len(set(ids))
    assert not dead & chunk_ids and dead <= set(ids)


def test_manifest_records_the_index_type(hnsw_data_dir, embedder):
    store = _open(hnsw_data_dir, embedder)
    assert index_kind(store.vectors) == "hnsw"
    assert store.manifest["faiss"]["type"] == "IndexIDMap2(IndexHNSWFlat)" and not store.manifest["faiss"]["exact"]
    _consistent(store)


def test_adding_and_replacing_an_issue_on_hnsw_keeps_ids_consistent(hnsw_data_dir, embedder, tmp_path):
    settings = settings_for(hnsw_data_dir, vector_index={"exact_below": 20})
    before = _open(hnsw_data_dir, embedder).chunk_count()
    report = ingest_files(settings, embedder, [BULLETINS / "2025-07-15.txt"])
    assert report.added
    store = _open(hnsw_data_dir, embedder)
    assert index_kind(store.vectors) == "hnsw" and store.chunk_count() > before
    _consistent(store)
    changed = tmp_path / "2025-06-04.txt"          # the same issue, edited: replaces its articles
    changed.write_text((BULLETINS / "2025-06-04.txt").read_text(encoding="utf-8").replace("健康管家", "健康守门人", 1),
                       encoding="utf-8")
    assert ingest_files(settings, embedder, [changed]).replaced
    store = _open(hnsw_data_dir, embedder)
    assert index_kind(store.vectors) == "hnsw"
    _consistent(store)
    probe = all_vectors(store.vectors)[1][0]
    assert len(store.vector_search(probe, 3)) == 3


def test_synthetic_issues_parse_into_articles_and_are_marked(tmp_path):
    from corpus.articles import load_issue
    paths = bench_scale.write_synthetic_corpus(tmp_path / "synthetic", 3, per_issue=6)
    assert all(p.name.startswith("synthetic-") for p in paths)
    assert "SYNTHETIC" in (tmp_path / "synthetic" / "README.txt").read_text(encoding="utf-8")
    issues = [load_issue(p, 1 << 26) for p in paths]
    assert len({i.key for i in issues}) == 3 and all(len(i.articles) >= 5 for i in issues)


def test_scale_bench_runs_at_a_tiny_size_and_writes_json(tmp_path, embedder, monkeypatch):
    settings = replace(settings_for(tmp_path / "unused"), vector_index={"exact_below": 30})
    out = tmp_path / "results"
    results = bench_scale.run(settings, [2, 3], 1, out, rounds=1, say=lambda line: None)
    written = json.loads((out / "scale.json").read_text(encoding="utf-8"))
    assert written == json.loads(json.dumps(results))
    assert [r["issues"] for r in written["sizes"]] == [2, 3]
    assert written["sizes"][-1]["index"] == "hnsw" and written["sizes"][-1]["recall_at_10"] >= 0.98
    assert written["sample"]["raw_encode_passages_per_s"] > 0 and written["sizes"][0]["pipe"]["cold_start_s"] > 0
    assert "| issues |" in (out / "scale.md").read_text(encoding="utf-8")


def test_replacing_an_issue_on_hnsw_marks_its_vectors_dead_then_compacts(hnsw_data_dir, embedder, tmp_path):
    lazy = settings_for(hnsw_data_dir, vector_index={"exact_below": 20, "rebuild_dead_share": 0.9})
    old = _open(hnsw_data_dir, embedder)
    old_ids = {r[0] for r in old.db.execute(
        "SELECT c.id FROM chunks c JOIN articles a ON a.id = c.article_id WHERE a.issue_key = '2025-06-04'")}
    hnsw_before = old.vectors.ntotal
    changed = tmp_path / "2025-06-04.txt"
    changed.write_text((BULLETINS / "2025-06-04.txt").read_text(encoding="utf-8").replace("健康管家", "健康守门人", 1),
                       encoding="utf-8")
    assert ingest_files(lazy, embedder, [changed]).replaced
    store = _open(hnsw_data_dir, embedder)
    dead = {r[0] for r in store.db.execute("SELECT id FROM dead_vectors")}
    assert dead == old_ids and index_kind(store.vectors) == "hnsw"        # no rebuild: the old vectors stay, dead
    assert store.vectors.ntotal > hnsw_before and store.manifest["dead_vectors"] == len(dead)
    _consistent(store)
    ids, vectors = all_vectors(store.vectors)
    for i in np.flatnonzero(np.isin(ids, list(dead))):
        found = [cid for cid, _ in store.vector_search(vectors[i], 10)]
        assert found and not set(found) & dead                           # its own vector no longer finds it
    eager = settings_for(hnsw_data_dir, vector_index={"exact_below": 20, "rebuild_dead_share": 0.1})
    again = tmp_path / "again" / "2025-06-04.txt"
    again.parent.mkdir()
    again.write_text(changed.read_text(encoding="utf-8").replace("健康守门人", "健康管家", 1), encoding="utf-8")
    assert ingest_files(eager, embedder, [again]).replaced
    store = _open(hnsw_data_dir, embedder)
    assert store.db.execute("SELECT count(*) FROM dead_vectors").fetchone()[0] == 0
    assert store.vectors.ntotal == store.chunk_count() and index_kind(store.vectors) == "hnsw"
    _consistent(store)
