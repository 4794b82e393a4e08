"""Read a bulletin file (.txt/.md, .pdf, .docx) into text, rejecting what is not one.

Every refusal is a ``BadBulletin`` whose message names the file; nothing is ever written.

PDF and .docx files are parsed in a child process with an address-space and CPU-time limit and a
wall-clock timeout, so a hostile file (an XML expansion bomb, a PDF that makes the parser loop)
costs the child, never the serving process; a .docx whose XML would unpack past ``XML_LIMIT`` is
refused before any parsing.
"""
from __future__ import annotations

import codecs
import json
import resource
import subprocess
import sys
import unicodedata
import zipfile
from pathlib import Path

from corpus.errors import BadBulletin

TEXT_SUFFIXES = {".txt", ".md", ".markdown", ".text"}
SUPPORTED_SUFFIXES = TEXT_SUFFIXES | {".pdf", ".docx"}
ZIP_EXPANSION_LIMIT = 2      # a .docx may unpack to at most this many times max_bytes (pictures are compressed)
XML_LIMIT = 5 << 20          # and its XML parts to at most this many bytes (a bulletin's are well under 1 MB)
PARSE_TIMEOUT_S = 60.0       # wall clock for the parsing child
PARSE_MEMORY_BYTES = 2 << 30  # its address space (the libraries themselves map ~0.5 GB)
_MIN_PDF_CHARS = 20          # fewer visible characters than this: a scanned PDF
_MAX_CONTROL_RATIO = 0.01
_MAGIC = {b"\x89PNG": "PNG 图片", b"\xff\xd8\xff": "JPEG 图片", b"GIF8": "GIF 图片",
          b"%PDF": "PDF 文件", b"PK\x03\x04": "压缩包/Office 文件", b"\x7fELF": "程序文件",
          b"\xd0\xcf\x11\xe0": "旧版 Office 文件", b"BM": "BMP 图片", b"II*\x00": "TIFF 图片",
          b"MM\x00*": "TIFF 图片", b"RIFF": "媒体文件", b"\x1f\x8b": "gzip 压缩包"}


def read_text(path: Path, max_bytes: int) -> str:
    """Return the text of a bulletin file, or raise BadBulletin saying why it is unusable."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        hint = "；请另存为 .docx" if suffix == ".doc" else ""
        raise BadBulletin(f"无法识别的文件类型：{path.name}（支持 .txt .md .pdf .docx{hint}；"
                          f"unsupported file type）")
    _check_size(path, max_bytes)
    if suffix == ".docx":
        _check_zip(path, max_bytes)                 # refuse a bomb before starting anything
    if suffix in (".pdf", ".docx"):
        text = _parse_in_child(path, max_bytes)
    else:
        text = _decode_text(path.read_bytes(), path.name)
    if not text.strip():
        raise BadBulletin(f"文件内容为空（只有空白）：{path.name}（blank file）")
    return text


def _check_size(path: Path, max_bytes: int) -> None:
    """Reject a missing, empty or oversized file before reading it."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise BadBulletin(f"无法读取文件：{path.name}（{exc.strerror or 'unreadable'}）") from exc
    if size == 0:
        raise BadBulletin(f"文件为空：{path.name}（empty file）")
    if size > max_bytes:
        raise BadBulletin(f"文件太大：{path.name} 有 {size} 字节，上限 {max_bytes} 字节"
                          f"（file too large）")


def _decode_text(data: bytes, name: str) -> str:
    """Decode text bytes as UTF-8 (with or without BOM), UTF-16 with BOM, or GB18030."""
    for bom, codec in ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"),
                       (codecs.BOM_UTF16_BE, "utf-16")):
        if data.startswith(bom):
            return _checked(_try_decode(data, codec), name)
    kind = next((kind for magic, kind in _MAGIC.items() if data.startswith(magic)), None)
    if kind or b"\x00" in data:
        raise BadBulletin(f"不是文本文件：{name}（看起来是{kind or '二进制数据'}；binary file）")
    text = _try_decode(data, "utf-8") or _try_decode(data, "gb18030") or _guess_decode(data)
    return _checked(text, name)


def _try_decode(data: bytes, codec: str) -> str | None:
    """Return data decoded strictly with codec, or None when it does not fit."""
    try:
        return data.decode(codec)
    except UnicodeDecodeError:
        return None


def _guess_decode(data: bytes) -> str | None:
    """Let charset-normalizer guess the encoding of text that is neither UTF-8 nor GB18030."""
    from charset_normalizer import from_bytes

    best = from_bytes(data).best()
    return str(best) if best is not None and best.chaos < 0.2 else None


def _checked(text: str | None, name: str) -> str:
    """Return decoded text unless it is undecodable or full of control characters."""
    if text is None:
        raise BadBulletin(f"无法识别文本编码：{name}（请保存为 UTF-8 或 GB18030；unknown encoding）")
    controls = sum(1 for ch in text if unicodedata.category(ch) == "Cc" and ch not in "\t\n\r\f")
    if controls > _MAX_CONTROL_RATIO * max(len(text), 1):
        raise BadBulletin(f"不是文本文件：{name}（含大量控制字符；binary file）")
    return text


def _read_pdf(path: Path) -> str:
    """Return the text layer of a PDF page by page in reading order."""
    import pymupdf

    try:
        with pymupdf.open(path) as doc:
            if doc.needs_pass:
                raise BadBulletin(f"PDF 有密码保护，无法读取：{path.name}（encrypted PDF）")
            pages = [page.get_text("text", sort=True) for page in doc]
    except BadBulletin:
        raise
    except Exception as exc:  # PyMuPDF raises assorted errors on damaged files
        raise BadBulletin(f"无法打开 PDF：{path.name}（文件损坏或不是 PDF；unreadable PDF）") from exc
    text = "\n".join(pages)
    if sum(1 for ch in text if not ch.isspace()) < _MIN_PDF_CHARS:
        raise BadBulletin(f"PDF 没有文字层（可能是扫描件，请先做文字识别）：{path.name}"
                          f"（scanned PDF without text）")
    return text


def _check_zip(path: Path, max_bytes: int) -> None:
    """Reject a .docx that is no zip, lacks a document, or would unpack too large."""
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise BadBulletin(f"不是有效的 Word 文件：{path.name}（not a .docx）") from exc
    if "word/document.xml" not in {info.filename for info in infos}:
        raise BadBulletin(f"不是有效的 Word 文件：{path.name}（缺少正文；not a .docx）")
    # zipfile never inflates a member past its declared size, so the directory is binding.
    xml = sum(info.file_size for info in infos if info.filename.lower().endswith((".xml", ".rels")))
    if sum(info.file_size for info in infos) > ZIP_EXPANSION_LIMIT * max_bytes or xml > XML_LIMIT:
        raise BadBulletin(f"Word 文件解压后过大，已拒绝：{path.name}（XML {xml} 字节，上限 {XML_LIMIT}；zip bomb?）")


def _parse_in_child(path: Path, max_bytes: int) -> str:
    """Return the text of a PDF or .docx parsed in a child process under memory and time limits."""
    try:
        proc = subprocess.run([sys.executable, "-c", "from corpus.read import _child; _child()", str(path),
                               str(max_bytes), str(PARSE_MEMORY_BYTES), str(int(PARSE_TIMEOUT_S) + 1)],
                              capture_output=True, timeout=PARSE_TIMEOUT_S, cwd=Path(__file__).resolve().parent.parent)
    except subprocess.TimeoutExpired:
        raise BadBulletin(f"文件解析超时（超过 {PARSE_TIMEOUT_S:g} 秒），已拒绝：{path.name}（parse timeout）") from None
    try:
        result = json.loads(proc.stdout.decode("utf-8"))
    except ValueError:
        result = None
    if proc.returncode != 0 or not isinstance(result, dict):
        raise BadBulletin(f"文件解析失败（超出内存或时间上限，或文件损坏），已拒绝：{path.name}"
                          f"（parser stopped, exit {proc.returncode}）")
    if "error" in result:
        raise BadBulletin(result["error"])
    return result["text"]


def _child() -> None:
    """The parsing child: set its own limits, parse, print {"text"} or {"error"} as JSON."""
    path, max_bytes, memory, cpu = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))
    try:
        text = _read_pdf(path) if path.suffix.lower() == ".pdf" else _read_docx(path, max_bytes)
        out = {"text": text}
    except BadBulletin as exc:
        out = {"error": exc.user_message}
    except MemoryError:
        sys.exit(3)
    sys.stdout.write(json.dumps(out))


def _read_docx(path: Path, max_bytes: int) -> str:
    """Return the paragraphs of a .docx, table cells included, in document order."""
    import docx
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    _check_zip(path, max_bytes)
    try:
        document = docx.Document(str(path))
    except Exception as exc:  # python-docx raises many kinds of errors on broken parts
        raise BadBulletin(f"无法读取 Word 文件：{path.name}（unreadable .docx）") from exc
    lines = []
    for child in document.element.body.iterchildren():
        if child.tag.endswith("}p"):
            lines.append(Paragraph(child, document).text)
        elif child.tag.endswith("}tbl"):
            lines.extend(p.text for row in Table(child, document).rows
                         for cell in row.cells for p in cell.paragraphs)
    return "\n".join(lines)
