"""Path parameters that need more than Litestar's converters."""

from __future__ import annotations

import unicodedata
from pathlib import Path


def rest_of_path(value: Path) -> str:
    """A label or annotation key taken from a ``{name:path}`` segment.

    Labels and keys may hold "/" (``app.kubernetes.io/name``); the router decodes ``%2F`` before
    matching, so such routes take the rest of the path, which Litestar hands over with a
    leading "/". Labels and keys are stored in NFC (D14), so the segment is compared in NFC too.
    """
    return unicodedata.normalize("NFC", str(value).lstrip("/"))
