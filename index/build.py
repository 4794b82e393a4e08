"""Build and update the index: file -> articles -> chunks -> vectors -> FAISS + SQLite, swapped in whole."""
from __future__ import annotations

import errno
import json
import logging
import shutil
import sqlite3
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Callable

import numpy as np
from tqdm import tqdm

from corpus.articles import load_issue
from corpus.models import Issue
from corpus.errors import BadBulletin
from index.errors import StorageError
from index import faults
from index.chunking import article_sentences, chunk_article, make_splitter
from index.embedding import Embedder
from index.generations import Generations, storage_error
from index.paths import MANIFEST_FILE
from index.store import FORMAT, IndexStore, issue_hashes
from index.vectors import VectorCache
from index.settings import IndexSettings
from index.paths import VECTORS_DB

log = logging.getLogger(__name__)
SUFFIXES = (".txt", ".md", ".pdf", ".docx")


@dataclass
class IngestReport:
    """What an ingest did, file by file."""

    added: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.added or self.replaced)

    def lines(self) -> list[str]:
        """Return one human-readable line per file."""
        return ([f"added     {n}" for n in self.added] + [f"replaced  {n}" for n in self.replaced]
                + [f"skipped   {n}: {why}" for n, why in self.skipped]
                + [f"rejected  {n}: {why}" for n, why in self.rejected])


def index_identity(settings: IndexSettings, embedder: Embedder) -> dict:
    """Return what an index records about what built it."""
    return {"embedding": embedder.identity,
            "chunking": {"size": settings.chunking.size, "overlap": settings.chunking.overlap}}


def bundled_bulletins() -> list[Path]:
    """Return the bulletin files shipped with the package (the default corpus)."""
    folder = resources.files("corpus").joinpath("bulletins")
    return sorted(Path(str(p)) for p in folder.iterdir() if Path(str(p)).suffix.lower() in SUFFIXES)


def _max_bytes(settings: IndexSettings) -> int:
    return int(settings.data.max_file_mb * 1024 * 1024)


def chunks_and_sentences(issue: Issue, settings: IndexSettings) -> tuple[list, list]:
    """Return what an issue puts in the index: its chunks and its articles' sentences."""
    splitter = make_splitter(settings.chunking)
    chunks = [c for a in issue.articles for c in chunk_article(a, issue.key, issue.date, splitter)]
    return chunks, [s for a in issue.articles for s in article_sentences(a, issue.key)]


def _load_all(files: list[Path], settings: IndexSettings) -> dict[Path, Issue | None]:
    """Parse every corpus file; a file that is not a bulletin maps to None (and is logged)."""
    issues: dict[Path, Issue | None] = {}
    for file in files:
        try:
            issues[file] = load_issue(file, _max_bytes(settings))
        except BadBulletin as exc:
            log.warning("corpus file skipped: %s", exc.user_message)
            issues[file] = None
    return issues


def _embed_issues(issues: list[Issue], settings: IndexSettings, embedder: Embedder, cache: VectorCache,
                  progress: bool) -> list[tuple[list, np.ndarray]]:
    """Return each issue's chunks with their vectors, embedding all issues' passages in one pass (full
    batches, whatever the issue sizes). Sentence vectors go to the cache only: answers read them there."""
    parts = [chunks_and_sentences(issue, settings) for issue in issues]
    vectors = cache.embed(embedder, [x for chunks, sentences in parts for x in chunks + sentences], progress)
    out, at = [], 0
    for chunks, sentences in parts:
        out.append((chunks, vectors[at:at + len(chunks)]))
        at += len(chunks) + len(sentences)
    return out


def build_index(settings: IndexSettings, embedder: Embedder, progress: bool = False, wait: bool = True,
                on_issue: Callable[[int, int, str], None] | None = None) -> Path:
    """Rebuild every issue of the corpus folder into a new generation and swap it in.

    ``on_issue(done, total, file name)`` is called after each file, for progress messages.
    """
    gens = Generations(settings.data_dir)
    with gens.write_lock(wait=wait), _storage(settings.data_dir):
        gens.recover()
        return _build_locked(settings, embedder, gens, progress, on_issue)


@contextmanager
def _storage(data_dir: Path):
    """Turn a data folder that cannot be written (disk full, read-only, unopenable SQLite) into one clear line."""
    try:
        yield
    except sqlite3.OperationalError as exc:
        raise StorageError(f"数据目录中的数据库无法写入：{data_dir}（{exc}）；正在服务的索引和语料未变") from None
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EACCES, errno.EPERM):
            raise storage_error(exc, Path(data_dir)) from None
        raise


def _build_locked(settings: IndexSettings, embedder: Embedder, gens: Generations, progress: bool,
                  on_issue: Callable[[int, int, str], None] | None = None) -> Path:
    files = sorted(p for p in gens.corpus_dir.glob("*") if p.suffix.lower() in SUFFIXES)
    path = gens.new()
    try:
        store = IndexStore(path, index_identity(settings, embedder), create=True,
                           vector_settings=settings.vector_index)
        cache = VectorCache(settings.data_dir / VECTORS_DB)
        issues = _load_all(files, settings)
        faults.point("reindex.loaded")
        parsed = [file for file in files if issues[file] is not None]
        embedded = dict(zip(parsed, _embed_issues([issues[f] for f in parsed], settings, embedder, cache, progress)))
        for done, file in enumerate(tqdm(files, desc="reindex", unit="issue", disable=not progress), start=1):
            issue = issues[file]
            if issue is not None:
                store.remove_issue(issue.key)          # a later file of the same date wins
                store.add_issue(issue, *embedded[file])
            faults.point("reindex.issue")
            if on_issue is not None:
                on_issue(done, len(files), file.name)
        store.save(progress=progress)
        store.close()
        cache.close()
    except BaseException:
        gens.discard(path)
        raise
    gens.swap(path)
    log.info("index rebuilt: %s (%d files)", path.name, len(files))
    return path


def ensure_index(settings: IndexSettings, embedder: Embedder, progress: bool = False,
                 say: Callable[[str], None] = log.warning) -> Path:
    """Return the served generation, first seeding the corpus folder with the bundled bulletins.

    Building one takes a while (a minute for the bundled issues on two cores), so ``say`` is told first.
    """
    gens = Generations(settings.data_dir)
    current = gens.current()
    if current is not None and not _older_format(current) and not gens.pending():
        return current
    with gens.write_lock(wait=True), _storage(settings.data_dir):
        gens.recover()                                # a writer killed after its swap: corpus rolled forward
        current = gens.current()
        if current is not None and not _older_format(current):
            return current
        if current is not None:                       # written by an older version: rebuilt from the corpus
            log.warning("index %s has an older format; rebuilding it (cached vectors are reused)", current.name)
        if not gens.corpus_dir.exists() or not any(gens.corpus_dir.iterdir()):
            _seed_corpus(gens.corpus_dir)
        files = sum(1 for p in gens.corpus_dir.iterdir() if p.suffix.lower() in SUFFIXES)
        say(f"building the index of {files} bulletin files in {settings.data_dir} (first start; "
            "about a minute on two cores, cached vectors make later builds quick) ...")
        return _build_locked(settings, embedder, gens, progress)


def _seed_corpus(corpus_dir: Path) -> None:
    """Fill an empty corpus folder with the bundled bulletins in one rename (a kill leaves it empty, not partial)."""
    seed = corpus_dir.with_name(f".{corpus_dir.name}.seed")
    shutil.rmtree(seed, ignore_errors=True)
    seed.mkdir(parents=True)
    for file in bundled_bulletins():
        shutil.copy2(file, seed / file.name)
        faults.point("seed.file")
    if corpus_dir.exists():
        corpus_dir.rmdir()
    seed.rename(corpus_dir)


def _older_format(generation: Path) -> bool:
    """Tell whether a generation's manifest names an older storage format than this version writes."""
    try:
        built = json.loads((generation / MANIFEST_FILE).read_text(encoding="utf-8")).get("format")
    except (OSError, ValueError):
        return False                                  # a missing manifest is IndexCorrupt's business, on open
    return isinstance(built, int) and built < FORMAT


def _classify(paths: list[Path], known_hashes: dict[str, str], settings: IndexSettings,
              report: IngestReport) -> list[tuple[Path, Issue, bool]]:
    todo: dict[str, tuple[Path, Issue, bool]] = {}
    for path in paths:
        try:
            issue = load_issue(path, _max_bytes(settings))
        except BadBulletin as exc:
            report.rejected.append((path.name, exc.user_message))
            continue
        known = known_hashes.get(issue.key)
        if known == issue.content_hash:
            report.skipped.append((path.name, f"{issue.key} 期已入库，内容相同"))
        else:
            todo[issue.key] = (path, issue, known is not None)
    return list(todo.values())


def ingest_files(settings: IndexSettings, embedder: Embedder, paths: list[Path], progress: bool = False,
                 wait: bool = False) -> IngestReport:
    """Add new issues and replace changed ones; copy their files into the corpus folder."""
    ensure_index(settings, embedder, progress)
    gens = Generations(settings.data_dir)
    report = IngestReport()
    with gens.write_lock(wait=wait), _storage(settings.data_dir):
        gens.recover()
        todo = _classify([Path(p) for p in paths], issue_hashes(gens.current()), settings, report)
        if not todo:
            return report
        path = gens.new()
        try:
            cache = VectorCache(settings.data_dir / VECTORS_DB)
            copied = gens.start_copy(path)                # the copy runs while the new text is embedded
            try:
                embedded = _embed_issues([issue for _, issue, _ in todo], settings, embedder, cache, progress)
            except BaseException:
                with suppress(Exception):                 # the embedding error is the one to report
                    copied()
                raise
            copied()
            faults.point("ingest.embedded")
            store = IndexStore(path, index_identity(settings, embedder), verify=False,   # a fresh copy of the served one
                               vector_settings=settings.vector_index)
            added, removed = {}, []
            for (file, issue, replacing), (chunks, vectors) in zip(todo, embedded):
                store.remove_issue(issue.key)
                store.add_issue(issue, chunks, vectors)
                name, others = _corpus_names(file, issue, gens.corpus_dir)
                added[name] = file
                removed += others
                (report.replaced if replacing else report.added).append(f"{file.name} ({issue.key}, {len(issue.articles)} 篇)")
            faults.point("ingest.added")
            store.save()
            store.close()
            cache.close()
            gens.stage_corpus(path, added, removed)       # the corpus changes travel with the generation
            faults.point("ingest.staged")
        except BaseException:
            gens.discard(path)
            raise
        gens.swap(path)
    return report


def _corpus_names(file: Path, issue: Issue, corpus_dir: Path) -> tuple[str, list[str]]:
    """Return the corpus name of an ingested file (<issue date><suffix>) and the earlier files of that issue."""
    name = f"{issue.key}{file.suffix.lower()}"
    others = [p.name for p in corpus_dir.glob(f"{issue.key}.*") if p.name != name and p.suffix.lower() in SUFFIXES]
    return name, others
