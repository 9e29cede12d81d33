"""Spreadsheet cells out and spreadsheet files in, both treated as hostile.

Out: cells that spreadsheets would run as formulas (OWASP ASVS V1.2.10, CSV injection). Every exported text cell
whose first character (after any apostrophes) is =, +, -, @, tab, CR or NUL gets an apostrophe in front;
importing removes exactly one again, so a round trip gives back the original text, including text that itself
starts with apostrophes.

In: CSV text and XLSX files read row by row within limits, so that a small upload cannot make the server
unpack, parse or hold more than the limits allow: an XLSX's parts are counted and their unpacked size is checked
from the zip's central directory and again while unpacking (a zip bomb is refused before the XML parser sees
it); rows, columns, cells and cell lengths are counted while reading; the sheet's declared dimension is ignored
(a sheet claiming A1:XFD1048576 would otherwise be padded to 17 billion cells). Every refusal is a
`SpreadsheetError` naming the row where there is one.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

DANGEROUS_FIRST = ("=", "+", "-", "@", "\t", "\r", "\x00")
# Excel's own limit on the text of one cell; longer text is refused, never cut.
MAX_CELL_CHARS = 32_767
MAX_COLUMNS = 500
MAX_CELLS = 5_000_000
# A workbook is a few dozen parts; thousands of entries are an attack on whoever lists them.
MAX_ZIP_ENTRIES = 1_000
_CHUNK = 1 << 20
# Characters no XML 1.0 document (so no XLSX) can carry and PostgreSQL refuses (NUL): a cell holding one is
# binary data, and storing it would make the next XLSX export of the row fail.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")

Row = tuple[int, list[Any]]


def _needs_prefix(text: str) -> bool:
    return text.lstrip("'").startswith(DANGEROUS_FIRST)


def escape_cell(value: Any) -> Any:
    if isinstance(value, str) and value and _needs_prefix(value):
        return f"'{value}"
    return value


def unescape_cell(text: str) -> str:
    if text.startswith("'") and _needs_prefix(text[1:]) and text[1:]:
        return text[1:]
    return text


class SpreadsheetError(ValueError):
    """A file that cannot be read as a spreadsheet within the limits; `row` is 1-based as in a spreadsheet."""

    def __init__(self, message: str, row: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.row = row


@dataclass(frozen=True)
class Limits:
    rows: int  # data rows, not counting the header or blank rows
    unzipped_bytes: int  # an XLSX's parts together, unpacked
    rows_setting: str = ""  # the setting to name when a limit is hit
    unzipped_setting: str = ""
    columns: int = MAX_COLUMNS
    cells: int = MAX_CELLS
    cell_chars: int = MAX_CELL_CHARS


def _setting(name: str) -> str:
    return f" (setting {name})" if name else ""


def read_csv(text: str, limits: Limits) -> tuple[list[Any], list[Row]]:
    """The header and the numbered non-blank rows of CSV text (row 1 is the header)."""
    if (nul := text.find("\x00")) >= 0:
        line = text.count("\n", 0, nul) + 1
        raise SpreadsheetError(f"the file contains a NUL byte (line {line}); it is not a CSV file.", line)
    reader = csv.reader(io.StringIO(text, newline=""))

    def records() -> Iterator[Row]:
        number = 0
        try:
            for number, values in enumerate(reader, start=1):  # `number` names the row on an error
                yield number, values
        except csv.Error as exc:
            raise SpreadsheetError(f"the CSV cannot be read: {exc}.", number + 1) from None

    return collect_rows(records(), limits)


def read_xlsx(data: bytes, limits: Limits) -> tuple[list[Any], list[Row]]:
    """The header and the numbered non-blank rows of an XLSX file's first sheet; formulas stay formulas."""
    from openpyxl import load_workbook

    _check_archive(data, limits)
    book = None
    try:
        # data_only=False: a formula arrives as its text ("=…") so that it can be refused rather than trusted.
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=False)
        sheet = book.worksheets[0]
        sheet.reset_dimensions()
        rows = sheet.iter_rows(values_only=True)
        return collect_rows(((number, list(values)) for number, values in enumerate(rows, start=1)), limits)
    except SpreadsheetError:
        raise
    except Exception as exc:  # any failure of the XML/zip readers on an upload means a bad file
        raise SpreadsheetError(
            f"the file is not a readable XLSX spreadsheet ({type(exc).__name__})."
        ) from None
    finally:
        if book is not None:
            book.close()


def _check_archive(data: bytes, limits: Limits) -> None:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        raise SpreadsheetError(f"the file is not an XLSX spreadsheet ({type(exc).__name__}).") from None
    with archive:
        entries = archive.infolist()
        if len(entries) > MAX_ZIP_ENTRIES:
            raise SpreadsheetError(
                f"the XLSX file holds {len(entries):,} parts; a spreadsheet has a few dozen "
                f"(at most {MAX_ZIP_ENTRIES:,} are read)."
            )
        too_big = (
            f"the XLSX file unpacks to more than {limits.unzipped_bytes:,} bytes, the limit"
            f"{_setting(limits.unzipped_setting)}; is it a zip bomb?"
        )
        declared = sum(entry.file_size for entry in entries)
        if declared > limits.unzipped_bytes:
            raise SpreadsheetError(f"{too_big} Its directory declares {declared:,} bytes.")
        # The directory is the file's own claim: count what really comes out too, one chunk at a time.
        unpacked = 0
        try:
            for entry in entries:
                with archive.open(entry) as part:
                    while chunk := part.read(_CHUNK):
                        unpacked += len(chunk)
                        if unpacked > limits.unzipped_bytes:
                            raise SpreadsheetError(too_big)
        except SpreadsheetError:
            raise
        except Exception as exc:  # bad CRC, unknown compression, encryption, truncation…
            raise SpreadsheetError(
                f"the file is not a readable XLSX spreadsheet ({type(exc).__name__})."
            ) from None


def _column_name(header: list[Any] | None, index: int) -> str:
    if header is not None and index < len(header) and str(header[index] or "").strip():
        return repr(str(header[index]).strip()[:60])
    from openpyxl.utils import get_column_letter

    return get_column_letter(index + 1)


def collect_rows(
    records: Iterable[Row], limits: Limits, header: list[Any] | None = None
) -> tuple[list[Any], list[Row]]:
    """Check numbered records within `limits`; the first is the header unless `header` is given.

    Blank rows are dropped as they come, so a file of a million empty lines holds no memory; a refusal names
    the row and, for a cell, the column.
    """
    rows: list[Row] = []
    cells = 0
    for number, values in records:
        while values and values[-1] in (None, ""):
            values.pop()
        if len(values) > limits.columns:
            raise SpreadsheetError(
                f"the row has a value in column {len(values):,}; at most {limits.columns:,} columns are read.",
                number,
            )
        for index, value in enumerate(values):
            if not isinstance(value, str):
                continue
            if len(value) > limits.cell_chars:
                raise SpreadsheetError(
                    f"the cell in column {_column_name(header, index)} has {len(value):,} characters; "
                    f"at most {limits.cell_chars:,} fit in a cell.",
                    number,
                )
            if control := _CONTROL.search(value):
                raise SpreadsheetError(
                    f"the cell in column {_column_name(header, index)} contains the control character "
                    f"U+{ord(control.group()):04X}; cells hold text, not binary data.",
                    number,
                )
        if header is None:
            header = values
            continue
        if not values:
            continue
        rows.append((number, values))
        cells += len(values)
        if len(rows) > limits.rows:
            raise SpreadsheetError(
                f"the file has more than {limits.rows:,} rows, the limit{_setting(limits.rows_setting)}.",
                number,
            )
        if cells > limits.cells:
            raise SpreadsheetError(
                f"the file has more than {limits.cells:,} cells; split it into smaller files.", number
            )
    if header is None:
        raise SpreadsheetError("the file is empty; expected a header row and one row per item.", 1)
    return header, rows
