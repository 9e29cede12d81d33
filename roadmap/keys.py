"""Stable item keys: the same (section path, text) gives the same key on every import (DESIGN §4)."""

import hashlib
import re
import unicodedata

from django.utils.text import slugify

_SPACE = re.compile(r"\s+")
# How a section path is written: "Cloud Capabilities > Cloud Security".
PATH_SEPARATOR = " > "


def normalise_text(text: str) -> str:
    """Case, accents, markup emphasis and spacing do not change an item's identity."""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = text.replace("*", "").replace("`", "").replace("_", " ")
    return _SPACE.sub(" ", text).strip(" .;:")


def item_key(section_path: str, text: str) -> str:
    """A readable prefix from the text and a digest of (normalised path, normalised text)."""
    identity = f"{normalise_text(section_path)}\x1f{normalise_text(text)}"
    digest = hashlib.sha256(identity.encode()).hexdigest()[:10]
    prefix = slugify(text)[:48].strip("-") or "item"
    return f"{prefix}-{digest}"
