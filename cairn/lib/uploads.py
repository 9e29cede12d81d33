"""Reading uploads, and an upload kept between an admin preview and its confirmation.

An upload is read only up to one byte past the importer's limit: the importer refuses anything longer with its
own message, and a multi-gigabyte upload is never held in a web process's memory whole.

The file waits in the user's session (database-backed, so any web node can take the confirmation) under a
one-time token; one pending upload per kind and session keeps the session small.
"""

from __future__ import annotations

import base64
import secrets
from typing import Any

from django.core.files.uploadedfile import UploadedFile
from django.http import HttpRequest


def read_upload(upload: UploadedFile, *, limit: int) -> bytes:
    """The upload's bytes, or its first `limit + 1` when it is longer (enough for the importer to refuse it)."""
    upload.seek(0)
    return upload.read(limit + 1)


def stash_upload(request: HttpRequest, kind: str, data: bytes, **details: Any) -> str:
    token = secrets.token_urlsafe(16)
    request.session[f"cairn_upload_{kind}"] = {
        "token": token,
        "data": base64.b64encode(data).decode("ascii"),
        **details,
    }
    return token


def take_upload(request: HttpRequest, kind: str, token: str | None) -> tuple[bytes, dict[str, Any]] | None:
    """The stashed upload and its details if `token` is the current one; it is gone afterwards either way."""
    pending = request.session.pop(f"cairn_upload_{kind}", None)
    if not pending or not token or not secrets.compare_digest(str(pending.get("token")), str(token)):
        return None
    data = base64.b64decode(pending.pop("data"))
    pending.pop("token")
    return data, pending
