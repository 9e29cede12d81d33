"""What import commands share: reading a file or standard input, and acting as a named user."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import CommandError


def read_input(path: str) -> tuple[bytes, str]:
    """The bytes of `path` (or standard input for "-") and the name to record as the source."""
    if path == "-":
        return sys.stdin.buffer.read(), "stdin"
    file = Path(path)
    try:
        return file.read_bytes(), file.name
    except OSError as exc:
        raise CommandError(f"cannot read {path}: {exc.strerror}.") from None


def active_user(username: str) -> Any:
    """The active user named `username`, or None for an empty name (the operator, with no user)."""
    if not username:
        return None
    try:
        return get_user_model().objects.get(username=username, is_active=True)
    except get_user_model().DoesNotExist:
        raise CommandError(f"no active user {username!r}.") from None
