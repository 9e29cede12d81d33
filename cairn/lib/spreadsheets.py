"""Cells that spreadsheets would run as formulas (OWASP ASVS V1.2.10, CSV injection).

Every exported text cell whose first character (after any apostrophes) is =, +, -, @, tab, CR or NUL gets an
apostrophe in front; importing removes exactly one again, so a round trip gives back the original text,
including text that itself starts with apostrophes.
"""

from __future__ import annotations

from typing import Any

DANGEROUS_FIRST = ("=", "+", "-", "@", "\t", "\r", "\x00")


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
