"""Readers turn a file into numbered operations, streaming in bounded memory.

Each reader yields ``(line, operation)`` where ``operation`` is a mapping, or a
:class:`BadRow` when the row itself cannot be read (malformed JSON, say). A file
that cannot be opened or decoded at all raises :class:`UnreadableFile`.
Line numbers follow records.md: 1-based file lines for JSONL, the header as
line 1 for CSV, the row number from 1 for Parquet.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

Format = Literal["jsonl", "csv", "parquet"]
SUFFIXES: dict[str, Format] = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
}


class UnreadableFile(Exception):
    """The file as a whole cannot be read (exit code 2)."""


@dataclass(frozen=True, slots=True)
class BadRow:
    field: str
    message: str


Row = tuple[int, Mapping[str, Any] | BadRow]


def detect_format(path: Path, given: str | None) -> Format:
    if given:
        g = given.lower()
        if g not in ("jsonl", "csv", "parquet"):
            raise UnreadableFile(f"unknown format {given!r}: use jsonl, csv or parquet")
        return g  # type: ignore[return-value]
    fmt = SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        raise UnreadableFile(
            f"cannot tell the format of {path.name!r} from its suffix; pass --format jsonl, csv or parquet"
        )
    return fmt


def read(path: Path, fmt: Format) -> Iterator[Row]:
    if not path.exists():
        raise UnreadableFile(f"file {str(path)!r} does not exist")
    if path.is_dir():
        raise UnreadableFile(f"{str(path)!r} is a directory, not a file")
    if fmt == "jsonl":
        return _jsonl(path)
    if fmt == "csv":
        return _csv(path)
    return _parquet(path)


def _open_text(path: Path) -> io.TextIOWrapper:
    try:
        return open(path, encoding="utf-8-sig", newline="")
    except OSError as e:
        raise UnreadableFile(f"cannot open {str(path)!r}: {e.strerror}") from None


def _jsonl(path: Path) -> Iterator[Row]:
    f = _open_text(path)
    with f:
        n = 0
        while True:
            try:
                line = f.readline()
            except UnicodeDecodeError:
                raise UnreadableFile(f"{path.name}: line {n + 1} is not UTF-8 text") from None
            if not line:
                return
            n += 1
            s = line.strip()
            if not s:
                continue
            try:
                value = json.loads(s)
            except ValueError as e:
                yield (
                    n,
                    BadRow(
                        "", f"not valid JSON: {getattr(e, 'msg', str(e))} (column {getattr(e, 'colno', '?')})"
                    ),
                )
                continue
            if not isinstance(value, dict):
                yield n, BadRow("", f"each line must be a JSON object, got {type(value).__name__}")
                continue
            yield n, value


def _csv(path: Path) -> Iterator[Row]:
    f = _open_text(path)
    with f:
        try:
            reader = csv.reader(f)
            header = next(reader, None)
        except (UnicodeDecodeError, csv.Error) as e:
            raise UnreadableFile(f"{path.name}: cannot read the CSV header: {e}") from None
        if header is None:
            return
        names = [h.strip() for h in header]
        if len(set(names)) != len(names):
            raise UnreadableFile(f"{path.name}: the CSV header names a column twice")
        while True:
            # the record's first line in the file: a quoted cell may hold line breaks, so records and
            # file lines differ (records.md numbers rows by file line, the header being line 1)
            line = reader.line_num + 1
            try:
                cells = next(reader)
            except StopIteration:
                return
            except UnicodeDecodeError:
                raise UnreadableFile(f"{path.name}: line {line} is not UTF-8 text") from None
            except csv.Error as e:
                yield line, BadRow("", f"malformed CSV: {e}")
                continue
            if not any(c.strip() for c in cells):
                continue
            if len(cells) != len(names):
                yield line, BadRow("", f"has {len(cells)} cells but the header has {len(names)} columns")
                continue
            yield line, {k: (v if v != "" else None) for k, v in zip(names, cells, strict=True)}


def _parquet(path: Path) -> Iterator[Row]:
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except Exception as e:  # pyarrow raises several kinds here
        raise UnreadableFile(f"{path.name} is not a readable Parquet file: {e}") from None
    n = 0
    for batch in pf.iter_batches(batch_size=8192):
        for row in batch.to_pylist():
            n += 1
            yield n, {k: v for k, v in row.items() if v is not None}
