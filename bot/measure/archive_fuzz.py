"""Bit-flip fuzz of a backup archive: every restore must reproduce the original exactly or be refused
(BadArchive: one line, exit 2 on the CLI) with the target left as it was.

    .venv/bin/python -m bot.measure.archive_fuzz [--flips 240] [--seed 12] [--cli 5]

Builds a data directory from the bundled bulletins (in a temporary folder), backs it up, then
restores copies of the archive with one bit flipped each (positions spread over the whole archive,
header and trailer included) over a copy of the data directory, with --force. Prints the figures.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

from index.errors import BadArchive  # noqa: E402
from index.archive import restore  # noqa: E402


def tree(root: Path) -> dict[str, str]:
    """Return relative path -> content digest (symlinks: their target) of a folder, generation names normalised."""
    out = {}
    root = Path(root)
    if not root.exists():
        return {}
    for path in sorted(root.rglob("*")):
        rel = "/".join("gen-*" if part.startswith("gen-") else part for part in path.relative_to(root).parts)
        if path.is_symlink():
            out[rel] = "-> " + ("gen-*" if os.readlink(path).startswith("gen-") else os.readlink(path))
        elif path.is_file():
            out[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def siblings(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()}


def flip_positions(size: int, flips: int, rng: random.Random) -> list[tuple[int, int]]:
    """Spread positions over the archive: the gzip header and trailer, then evenly with jitter."""
    fixed = [p for p in (0, 1, 2, 3, 4, 8, 9, size - 8, size - 5, size - 4, size - 1) if 0 <= p < size]
    step = size / max(flips - len(fixed), 1)
    spread = [min(size - 1, int(i * step + rng.random() * step)) for i in range(flips - len(fixed))]
    return [(p, rng.randrange(8)) for p in fixed + spread]


def fuzz(archive: Path, original: Path, work: Path, identity: dict, flips: int, seed: int = 12,
         say=print) -> dict:
    """Restore ``flips`` one-bit-flipped copies of ``archive`` over copies of ``original``; return the counts.

    ``reproduced``: the restored folder equals a clean restore; ``refused``: BadArchive and the target
    unchanged; ``bad``: anything else (a wrong restore, another exception, a changed target)."""
    rng = random.Random(seed)
    clean_target = work / "clean"
    restore(archive, clean_target, identity)
    clean = tree(clean_target)
    data = archive.read_bytes()
    counts = {"flips": 0, "reproduced": 0, "refused": 0, "bad": 0}
    bad: list[str] = []
    for n, (pos, bit) in enumerate(flip_positions(len(data), flips, rng)):
        flipped = bytearray(data)
        flipped[pos] ^= 1 << bit
        case = work / f"case-{n}"
        case.mkdir()
        bad_archive, target = case / "bb.tar.gz", case / "data"
        bad_archive.write_bytes(bytes(flipped))
        shutil.copytree(original, target, symlinks=True)
        before, around = tree(target), siblings(case)
        counts["flips"] += 1
        try:
            restore(bad_archive, target, identity, force=True)
        except BadArchive:
            if tree(target) == before and siblings(case) == around:
                counts["refused"] += 1
            else:
                counts["bad"] += 1
                bad.append(f"byte {pos} bit {bit}: refused but the target changed")
        except Exception as exc:  # noqa: BLE001 - any other error is a finding
            counts["bad"] += 1
            bad.append(f"byte {pos} bit {bit}: {type(exc).__name__}: {exc}")
        else:
            if tree(target) == clean:
                counts["reproduced"] += 1
            else:
                counts["bad"] += 1
                bad.append(f"byte {pos} bit {bit}: restored something other than the original")
        shutil.rmtree(case)
    counts["findings"] = bad
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flips", type=int, default=240)
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--cli", type=int, default=5, help="also run this many flipped restores through the CLI")
    args = parser.parse_args()
    from index.archive import backup
    from index.build import ensure_index, index_identity
    from index.embedding import Embedder
    from bot.settings import Settings, replace

    with tempfile.TemporaryDirectory(prefix="archive-fuzz-") as tmp:
        tmp = Path(tmp)
        settings = replace(Settings(), data={"dir": str(tmp / "data")})
        embedder = Embedder(settings.embedding)
        ensure_index(settings, embedder)
        archive = tmp / "bb.tar.gz"
        backup(tmp / "data", archive)
        identity = index_identity(settings, embedder)
        started = time.perf_counter()
        counts = fuzz(archive, tmp / "data", tmp, identity, args.flips, args.seed)
        print(f"archive: {archive.stat().st_size} bytes; {counts['flips']} one-bit flips across it "
              f"(gzip header and trailer included) in {time.perf_counter() - started:.0f} s")
        print(f"reproduced the original exactly: {counts['reproduced']}")
        print(f"refused (BadArchive, target unchanged): {counts['refused']}")
        print(f"anything else (a finding): {counts['bad']}")
        for line in counts["findings"]:
            print("  " + line)
        data, rng, codes = archive.read_bytes(), random.Random(args.seed + 1), []
        for n in range(args.cli):
            flipped = bytearray(data)
            flipped[rng.randrange(len(data) // 4, len(data))] ^= 1 << rng.randrange(8)
            (tmp / "cli.tar.gz").write_bytes(bytes(flipped))
            shutil.rmtree(tmp / "cli", ignore_errors=True)
            shutil.copytree(tmp / "data", tmp / "cli", symlinks=True)
            before = tree(tmp / "cli")
            proc = subprocess.run([sys.executable, "-m", "bot", "--data-dir", str(tmp / "cli"), "restore", "--force",
                                   str(tmp / "cli.tar.gz")], cwd=REPO, capture_output=True, text=True)
            lines = proc.stderr.strip().splitlines()
            codes.append((proc.returncode, len(lines), "Traceback" in proc.stderr,
                          tree(tmp / "cli") == before))
        print(f"through the CLI: {len(codes)} flipped restores -> exit codes {[c[0] for c in codes]}, "
              f"one-line messages {sum(1 for c in codes if c[1] == 1)}, tracebacks {sum(1 for c in codes if c[2])}, "
              f"target unchanged {sum(1 for c in codes if c[3])}")
        sys.exit(1 if counts["bad"] else 0)


if __name__ == "__main__":
    main()
