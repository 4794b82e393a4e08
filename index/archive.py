"""Back up and restore a data directory: the corpus folder, the query log, the vector cache and the served index."""
from __future__ import annotations

import datetime as dt
import io
import json
import shutil
import sqlite3
import tarfile
import tempfile
from pathlib import Path

from errors import BulletinBotError
from index.generations import Generations
from index.store import MANIFEST_FILE, IndexStore

FORMAT = 1


def _add_sqlite(tar: tarfile.TarFile, path: Path) -> None:
    """Add a consistent copy of a live SQLite database (through its backup API), under its own name."""
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / path.name
        src, dst = sqlite3.connect(path), sqlite3.connect(copy)
        try:
            src.backup(dst)
        finally:
            src.close()
            dst.close()
        tar.add(copy, arcname=path.name)


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime = len(data), int(dt.datetime.now().timestamp())
    tar.addfile(info, io.BytesIO(data))


def backup(data_dir: Path, target: Path) -> dict:
    """Write ``target`` (.tar.gz) holding bulletins/, querylog.db, vectors.db and the served index; return its summary."""
    gens = Generations(data_dir)
    current = gens.current()
    if current is None:
        raise BulletinBotError(f"没有可备份的索引：{data_dir}（no index in the data directory）")
    with gens.write_lock(wait=True):                  # no writer changes the index while we read it
        summary = {"format": FORMAT, "created": dt.datetime.now().isoformat(timespec="seconds"),
                   "generation": current.name, "bulletins": [], "querylog": False}
        with tarfile.open(target, "w:gz") as tar:
            for file in sorted(gens.corpus_dir.glob("*")):
                if file.is_file() and not file.name.startswith("."):
                    tar.add(file, arcname=f"bulletins/{file.name}")
                    summary["bulletins"].append(file.name)
            for file in sorted(current.iterdir()):
                tar.add(file, arcname=f"generation/{file.name}")
            if (Path(data_dir) / "querylog.db").exists():
                _add_sqlite(tar, Path(data_dir) / "querylog.db")
                summary["querylog"] = True
            if (Path(data_dir) / "vectors.db").exists():     # sentence vectors for quoting (else embedded again)
                _add_sqlite(tar, Path(data_dir) / "vectors.db")
                summary["vectors"] = True
            _add_bytes(tar, "backup.json", json.dumps(summary, ensure_ascii=False, indent=2).encode("utf-8"))
    return summary


def _safe_members(tar: tarfile.TarFile) -> list[tarfile.TarInfo]:
    members = []
    for m in tar.getmembers():
        parts = Path(m.name).parts
        if not m.isfile() or m.name.startswith("/") or ".." in parts or len(parts) > 2:
            raise BulletinBotError(f"备份文件中有不安全的条目：{m.name}（unsafe archive member）")
        members.append(m)
    return members


def restore(archive: Path, data_dir: Path, identity: dict, force: bool = False) -> dict:
    """Restore an archive into ``data_dir``; an existing one is kept aside as <dir>.before-restore-<time>."""
    data_dir = Path(data_dir)
    if data_dir.exists() and any(data_dir.iterdir()) and not force:
        raise BulletinBotError(f"数据目录非空：{data_dir}；确认覆盖请加 --force（data directory not empty）")
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".restore-", dir=data_dir.parent))
    try:
        try:
            with tarfile.open(archive, "r:gz") as tar:
                tar.extractall(staging, members=_safe_members(tar), filter="data")
            summary = json.loads((staging / "backup.json").read_text(encoding="utf-8"))
        except (tarfile.TarError, OSError, EOFError, ValueError, KeyError) as exc:
            raise BulletinBotError(f"无法读取备份文件：{archive}（{type(exc).__name__}）") from None
        gen = Generations(staging).root / summary["generation"]
        gen.parent.mkdir(parents=True)
        (staging / "generation").rename(gen)
        IndexStore(gen, identity).close()            # checksums and settings verified before anything moves
        (gen.parent / "current").symlink_to(gen.name)
        (staging / "backup.json").unlink()
        if data_dir.exists():
            data_dir.rename(data_dir.with_name(f"{data_dir.name}.before-restore-{dt.datetime.now():%Y%m%d-%H%M%S}"))
        staging.rename(data_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return summary
