"""Atomic artifact writing: a reader never sees half a file, a killed writer leaves no debris in place."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterable

from harness.core.errors import ConfigError


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to a temporary file beside ``path``, fsync it, then rename it over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False, default=str) + "\n")


def write_jsonl(path: Path, rows: Iterable[dict]) -> None:
    atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False, default=str) + "\n" for r in rows))


def read_text(path: Path, what: str = "file") -> str:
    """The text of a UTF-8 file; a missing file, a folder, or bytes that are not UTF-8 are one ConfigError naming
    the file (and the line and byte offset of the first bad byte). ``.gz`` files are decompressed first."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(str(path), "(file)", f"no such {what}")
    if not path.is_file():
        raise ConfigError(str(path), "(file)", f"expected a {what}, found a folder")
    try:
        data = path.read_bytes()
        if path.suffix == ".gz":
            import gzip
            import zlib

            try:
                data = gzip.decompress(data)
            except (OSError, EOFError, zlib.error) as exc:
                raise ConfigError(str(path), "(file)", f"not a valid gzip file ({exc})") from None
    except PermissionError:
        raise ConfigError(str(path), "(file)", "not readable (permission denied)") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise ConfigError(str(path), f"line {line}",
                          f"not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}); "
                          "save the file as UTF-8") from None


def read_json(path: Path) -> Any:
    text = read_text(path, "JSON file")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(str(path), f"line {exc.lineno}", f"not valid JSON ({exc.msg})") from None


def read_jsonl_numbered(path: Path) -> list[tuple[int, dict]]:
    """(line number, object) for every non-blank line of a JSONL (or ``.jsonl.gz``) file; a line that is not a
    JSON object is reported with its number."""
    rows = []
    for number, line in enumerate(read_text(path, "JSONL file").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ConfigError(str(path), f"line {number}", f"not valid JSON ({exc.msg})") from None
        if not isinstance(row, dict):
            raise ConfigError(str(path), f"line {number}", "each line must be a JSON object")
        rows.append((number, row))
    return rows


def read_jsonl(path: Path) -> list[dict]:
    """Read a JSONL file; a bad line is reported with its number."""
    return [row for _, row in read_jsonl_numbered(path)]


def read_csv(path: Path, required: tuple[str, ...] = ()) -> list[tuple[int, dict]]:
    """(line number, row) for every record of a UTF-8 CSV with a header; a missing column, a row with the wrong
    number of fields, or an unterminated quote is one ConfigError naming the line."""
    import csv
    import io

    text = read_text(path, "CSV file")
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    start = 1
    try:
        header = next(reader, None)
        if header is None:
            raise ConfigError(str(path), "(header)", "empty CSV file (expected a header line)")
        missing = [name for name in required if name not in header]
        if missing:
            raise ConfigError(str(path), missing[0], f"CSV needs a '{missing[0]}' column (header: {header})")
        rows, start = [], reader.line_num + 1
        for fields in reader:
            if fields and len(fields) != len(header):
                raise ConfigError(str(path), f"line {start}",
                                  f"{len(fields)} fields where the header has {len(header)}")
            if fields:
                rows.append((start, dict(zip(header, fields))))
            start = reader.line_num + 1
    except csv.Error as exc:
        hint = "; a quoted field never closes" if "end of data" in str(exc) else ""
        raise ConfigError(str(path), f"line {start}", f"malformed CSV ({exc}{hint})") from None
    return rows
