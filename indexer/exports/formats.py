"""Writers of the deposits export: csv, jsonl, xlsx, parquet.

Each streams its rows into a temporary file beside the target and moves it into place only when the
whole export is written: a failed export leaves the target as it was (or absent), never half-written.
Decimal columns arrive as exact fixed-point text: CSV and JSONL write that text; Parquet stores
decimal128 values of the column's scale (a value that would not fit exactly is an ExportError, never
rounded); XLSX stores numeric cells whose stored text is that exact text.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import os
import re
import stat
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import IO, Any, Final

import orjson

from indexer.exports.rows import DEPOSIT_COLUMNS, Column, ExportError, ExportRow
from indexer.exports.totals import DepositTotals
from pricing.quote import iso

FORMATS: Final = ("csv", "jsonl", "xlsx", "parquet")
PARQUET_BATCH: Final = 50_000  # rows per record batch (a row group each): bounds memory
XLSX_SHEET: Final = "Deposits"
XLSX_TOTALS_SHEET: Final = "Totals"


class UnwritableOutput(ExportError):
    """--out names something the export cannot replace with a file (checked before reading anything)."""


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


class AtomicOutput:
    """A temporary file beside `target`, created at once (so an unwritable place is known before any
    work), renamed onto the target when the `with` block succeeds and removed otherwise.

    The target must be a regular file or absent: a symlink, a device, a FIFO or a folder would be
    replaced rather than written through, so they are refused. The new file gets the mode of the file it
    replaces, or 0666 less the umask (mkstemp's 0600 would hide shared exports)."""

    def __init__(self, target: Path) -> None:
        self.target = target
        if target.name in ("", "-", ".", ".."):
            raise UnwritableOutput(f"{target}: name a file (writing to standard output is not supported)")
        try:
            found = target.lstat()
        except FileNotFoundError:
            found = None
        except OSError as exc:
            raise UnwritableOutput(f"{target}: {exc.strerror}") from None
        if found is not None and not stat.S_ISREG(found.st_mode):
            kind = "a symbolic link" if stat.S_ISLNK(found.st_mode) else "not a regular file"
            raise UnwritableOutput(f"{target}: {kind}; name a regular file or a new path")
        self.mode = stat.S_IMODE(found.st_mode) if found is not None else 0o666 & ~_umask()
        folder = target.parent
        if not folder.is_dir():
            raise UnwritableOutput(f"{target}: folder {folder} does not exist")
        try:
            handle, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=folder)
        except OSError as exc:
            raise UnwritableOutput(f"{target}: cannot write in {folder}: {exc.strerror}") from None
        os.close(handle)
        self.temporary = Path(name)

    def __enter__(self) -> Path:
        return self.temporary

    def __exit__(self, exc_type: object, *_rest: object) -> None:
        try:
            if exc_type is None:
                try:
                    os.chmod(self.temporary, self.mode)
                    os.replace(self.temporary, self.target)
                except OSError as exc:
                    raise ExportError(f"{self.target}: {exc.strerror}") from None
        finally:
            with contextlib.suppress(OSError):
                self.temporary.unlink()


def atomic_output(target: Path) -> AtomicOutput:
    return AtomicOutput(target)


TIME_COLUMNS: Final = tuple(index for index, column in enumerate(DEPOSIT_COLUMNS) if column.kind == "time")


MEMO_COLUMN: Final = next(index for index, column in enumerate(DEPOSIT_COLUMNS) if column.name == "memo")
# A spreadsheet opening a CSV runs a cell that starts with one of these as a formula (CSV injection).
_FORMULA_START: Final = ("=", "+", "-", "@", "\t", "\r")
# Characters an XLSX file cannot hold (openpyxl's ILLEGAL_CHARACTERS_RE): written as \xNN instead.
_XLSX_ILLEGAL: Final = re.compile(r"[\000-\010\013\014\016-\037]")


def csv_safe_memo(memo: str) -> str:
    """A memo (the one field a sender writes freely) as CSV text a spreadsheet shows, not runs."""
    return "'" + memo if memo.startswith(_FORMULA_START) else memo


def _as_text(row: Sequence[Any]) -> list[Any]:
    """The row for a text format: times as ISO 8601 UTC text."""
    values = list(row)
    for index in TIME_COLUMNS:
        if values[index] is not None:
            values[index] = iso(values[index])
    return values


def _counted(rows: Iterable[ExportRow], totals: DepositTotals) -> Iterator[Sequence[Any]]:
    for values, numbers in rows:
        totals.add(values, numbers)
        yield values


def write_deposits(rows: Iterable[ExportRow], path: Path, file_format: str) -> DepositTotals:
    """Write the export into `path` (the caller's temporary file); returns its totals. ExportError when a
    value does not fit the format or the file cannot be written."""
    writer: dict[str, Callable[[Iterable[Sequence[Any]], Path, DepositTotals], None]] = {
        "csv": _write_csv,
        "jsonl": _write_jsonl,
        "xlsx": _write_xlsx,
        "parquet": _write_parquet,
    }
    if file_format not in writer:
        raise ExportError(f"unknown format {file_format!r} (one of {', '.join(FORMATS)})")
    totals = DepositTotals()
    try:
        writer[file_format](_counted(rows, totals), path, totals)
    except OSError as exc:
        raise ExportError(f"{exc.strerror or exc}") from None
    return totals


def _open_text(path: Path) -> IO[str]:
    return path.open("w", encoding="utf-8", newline="")


def _write_csv(rows: Iterable[Sequence[Any]], path: Path, _totals: DepositTotals) -> None:
    with _open_text(path) as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow([column.name for column in DEPOSIT_COLUMNS])
        for row in rows:
            values = _as_text(row)  # None is written as an empty field
            if values[MEMO_COLUMN]:
                values[MEMO_COLUMN] = csv_safe_memo(values[MEMO_COLUMN])
            writer.writerow(values)


def _write_jsonl(rows: Iterable[Sequence[Any]], path: Path, _totals: DepositTotals) -> None:
    names = [column.name for column in DEPOSIT_COLUMNS]
    with path.open("wb") as out:
        for row in rows:
            out.write(orjson.dumps(dict(zip(names, _as_text(row), strict=True))) + b"\n")


# --- Parquet ---


def _exact_decimal(text: str, column: Column) -> Decimal:
    """The column's text as a Decimal of exactly the column's scale; ExportError if it has more places
    or more digits than the column holds (never rounded)."""
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ExportError(f"column {column.name}: {text!r} is not a decimal") from None
    quantum = Decimal(1).scaleb(-column.scale)
    scaled = value.quantize(quantum)
    if scaled != value or len(scaled.as_tuple().digits) > column.precision:
        raise ExportError(f"column {column.name}: {text} does not fit decimal({column.precision},{column.scale})")
    return scaled


def parquet_schema() -> Any:
    import pyarrow as pa  # noqa: PLC0415

    types = {
        "int": pa.int64(),
        "text": pa.string(),
        "time": pa.timestamp("ms", tz="UTC"),  # Parquet has no seconds unit
    }
    fields = []
    for column in DEPOSIT_COLUMNS:
        kind = pa.decimal128(column.precision, column.scale) if column.kind == "decimal" else types[column.kind]
        fields.append(pa.field(column.name, kind, nullable=column.name not in ("deposit_id", "slot", "signature")))
    return pa.schema(fields)


def _write_parquet(rows: Iterable[Sequence[Any]], path: Path, _totals: DepositTotals) -> None:
    import pyarrow as pa  # noqa: PLC0415
    import pyarrow.parquet as pq  # noqa: PLC0415

    schema = parquet_schema()
    decimal_columns = [(index, column) for index, column in enumerate(DEPOSIT_COLUMNS) if column.kind == "decimal"]
    with pq.ParquetWriter(path, schema, compression="zstd") as writer:
        columns: list[list[Any]] = [[] for _ in DEPOSIT_COLUMNS]

        def flush() -> None:
            if columns[0]:
                writer.write_batch(pa.record_batch(columns, schema=schema))
                for values in columns:
                    values.clear()

        for row in rows:
            for index, value in enumerate(row):
                columns[index].append(value)
            for index, column in decimal_columns:
                text = row[index]
                if text is not None:
                    columns[index][-1] = _exact_decimal(text, column)
            if len(columns[0]) >= PARQUET_BATCH:
                flush()
        flush()


# --- XLSX ---


def _xlsx_number(sheet: Any, text: str, number_format: str) -> Any:
    """A numeric cell whose stored value is exactly `text`.

    openpyxl formats numbers with "%.16g" (through a float), which would round a price such as
    22.942985835974703; so the cell keeps the exact text and is marked numeric (data type "n"), which
    openpyxl 3.1 writes verbatim into the sheet's <v> element."""
    from openpyxl.cell import WriteOnlyCell  # noqa: PLC0415

    cell = WriteOnlyCell(sheet)
    cell._value = text  # see above: the exact decimal text
    cell.data_type = "n"
    cell.number_format = number_format
    return cell


def _xlsx_text(sheet: Any, text: str) -> Any:
    """Text as a text cell: control characters written as \\xNN, and never a formula (a memo such as
    '=HYPERLINK(…)' must not become one)."""
    from openpyxl.cell import WriteOnlyCell  # noqa: PLC0415

    clean = _XLSX_ILLEGAL.sub(lambda found: f"\\x{ord(found.group()):02x}", text)
    if not clean.startswith("="):
        return clean
    cell = WriteOnlyCell(sheet, value=clean)
    cell.data_type = "s"
    return cell


def _write_xlsx(rows: Iterable[Sequence[Any]], path: Path, totals: DepositTotals) -> None:
    from openpyxl import Workbook  # noqa: PLC0415
    from openpyxl.cell import WriteOnlyCell  # noqa: PLC0415

    workbook = Workbook(write_only=True)  # streams each sheet to a temporary file: flat memory
    sheet = workbook.create_sheet(XLSX_SHEET)
    sheet.append([column.name for column in DEPOSIT_COLUMNS])
    formats = {column.name: "0" if column.scale == 0 else "0." + "0" * column.scale for column in DEPOSIT_COLUMNS}
    time_cells = {index for index, column in enumerate(DEPOSIT_COLUMNS) if column.kind == "time"}
    decimal_cells = {index for index, column in enumerate(DEPOSIT_COLUMNS) if column.kind == "decimal"}
    for row in rows:
        cells: list[Any] = []
        for index, value in enumerate(row):
            if value is None:
                cells.append(None)
            elif index in decimal_cells:
                number_format = formats[DEPOSIT_COLUMNS[index].name]
                if DEPOSIT_COLUMNS[index].name in ("amount", "price_usd"):
                    number_format = "0." + "0" * max(1, len(value.partition(".")[2]))
                cells.append(_xlsx_number(sheet, value, number_format))
            elif isinstance(value, str):
                cells.append(_xlsx_text(sheet, value))
            elif index in time_cells:
                cell = WriteOnlyCell(sheet, value=value.astimezone(dt.UTC).replace(tzinfo=None))
                cell.number_format = "yyyy-mm-dd hh:mm:ss"  # UTC
                cells.append(cell)
            else:
                cells.append(value)
        sheet.append(cells)
    summary = workbook.create_sheet(XLSX_TOTALS_SHEET)
    header = (
        "asset",
        "inflows",
        "amount_received",
        "amount_credited_or_held",
        "usd_value",
        "bonus",
        "credited",
        "held_in_suspense",
        "osr_burn",
        "osr_retained",
    )
    summary.append(list(header))
    for item in totals.record()["by_asset"]:
        summary.append(
            [
                item["asset"],
                item["inflows"],
                *(
                    _xlsx_number(summary, item[name], "0." + "0" * max(1, len(item[name].partition(".")[2])))
                    for name in header[2:]
                ),
            ]
        )
    summary.append([])
    summary.append(["rows", totals.rows])
    summary.append(["credited", _xlsx_number(summary, totals.record()["credited"], "0.000000")])
    summary.append(["held_in_suspense", _xlsx_number(summary, totals.record()["held_in_suspense"], "0.000000")])
    workbook.save(path)
