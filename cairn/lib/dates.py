"""Calendar arithmetic the roadmap needs (month windows of phases)."""

import calendar
import re
from datetime import date


def add_months(day: date, months: int) -> date:
    """`day` moved by whole months, clamped to the end of a shorter month (31 Jan + 1 → 28/29 Feb)."""
    month_index = day.month - 1 + months
    year = day.year + month_index // 12
    month = month_index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


_MONTHS = {
    name.casefold(): number
    for number in range(1, 13)
    for name in (calendar.month_name[number], calendar.month_abbr[number])
}
_ISO_DAY = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})")
_ISO_MONTH = re.compile(r"(\d{4})-(\d{1,2})")
_MONTH_YEAR = re.compile(r"([A-Za-z]+)\.?\s+(\d{4})")
_MONTH_DAY_YEAR = re.compile(r"([A-Za-z]+)\.?\s+(\d{1,2})(?:st|nd|rd|th)?,?\s+(\d{4})")
_DAY_MONTH_YEAR = re.compile(r"(\d{1,2})(?:st|nd|rd|th)?\s+([A-Za-z]+)\.?,?\s+(\d{4})")


def parse_document_date(text: str) -> date | None:
    """The date a document's control block means, or None when it is not one ("To be set", "Quarterly").

    Documents write dates as 2025-03-01, 2025-03, "March 2025", "March 1, 2025" or "1 March 2025"; a month
    without a day means its first day.
    """
    text = text.strip()
    try:
        if match := _ISO_DAY.fullmatch(text):
            return date(int(match[1]), int(match[2]), int(match[3]))
        if match := _ISO_MONTH.fullmatch(text):
            return date(int(match[1]), int(match[2]), 1)
        if (match := _MONTH_YEAR.fullmatch(text)) and match[1].casefold() in _MONTHS:
            return date(int(match[2]), _MONTHS[match[1].casefold()], 1)
        if (match := _MONTH_DAY_YEAR.fullmatch(text)) and match[1].casefold() in _MONTHS:
            return date(int(match[3]), _MONTHS[match[1].casefold()], int(match[2]))
        if (match := _DAY_MONTH_YEAR.fullmatch(text)) and match[2].casefold() in _MONTHS:
            return date(int(match[3]), _MONTHS[match[2].casefold()], int(match[1]))
    except ValueError:  # 2025-13-40 looks like a date but is none
        return None
    return None
