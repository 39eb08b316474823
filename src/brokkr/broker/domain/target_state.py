"""Target-state rules that need no database: the ETag of a state. Pure."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from uuid import UUID


def etag(entries: Iterable[tuple[UUID, str]], *, full: bool) -> str:
    """A strong ETag over what the agent would receive: object ids and checksums, and the mode."""
    digest = hashlib.sha256(b"full" if full else b"incremental")
    for object_id, checksum in entries:
        digest.update(object_id.bytes)
        digest.update(checksum.encode("ascii"))
    return f'"{digest.hexdigest()[:32]}"'


def matches(if_none_match: str | None, current: str) -> bool:
    """RFC 9110 If-None-Match: ``*`` or any listed tag equal to ``current`` (weak compare)."""
    if not if_none_match:
        return False
    for candidate in if_none_match.split(","):
        tag = candidate.strip()
        if tag == "*" or tag.removeprefix("W/") == current:
            return True
    return False
