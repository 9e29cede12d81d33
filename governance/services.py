"""Changes to controlled documents. The strategy import and the admin both come through here or the importer."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from django.core.exceptions import PermissionDenied
from django.db import transaction

from cairn.lib.dates import parse_document_date
from cairn.lib.history import save_with_history
from governance.models import ControlledDocument
from roadmap import access

if TYPE_CHECKING:
    from roadmap.models import AnyUser

# Text as written → the date Cairn reads from it, kept in step whenever the text changes.
DATE_COLUMNS = {
    "last_updated": "last_updated_on",
    "review_date": "last_reviewed_on",
    "next_review": "next_review_due",
}


@transaction.atomic
def controlled_document_update(
    *, document: ControlledDocument, by: AnyUser, data: Mapping[str, Any]
) -> ControlledDocument:
    """Change the control fields of a document; the dates are re-read from the text written."""
    if not access.can_manage_program(by, document.program_id):
        raise PermissionDenied("Only the program's managers may change its documents.")
    for name, value in data.items():
        setattr(document, name, value)
    for text_column, date_column in DATE_COLUMNS.items():
        if text_column in data:
            setattr(document, date_column, parse_document_date(getattr(document, text_column)))
    save_with_history(document, by=by, reason="Document control edited")
    return document
