"""The data directory holds the admin PAK and, on SQLite, every manifest: its owner only.

A directory the broker creates is 0700 and its files 0600. The data directory and the database
files, when they already exist with looser modes, are tightened (with a warning) rather than
trusted or refused: they are the broker's own, and refusing to start would only push an operator
to loosen things further. A path the broker may not chmod (not its owner) is left as it is, with
a warning.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

log = logging.getLogger(__name__)

DIR_MODE = 0o700
FILE_MODE = 0o600


def ensure_dir(path: Path) -> None:
    """Create ``path`` (and its parents) if missing; make it owner-only."""
    create_dir(path)
    _tighten(path, DIR_MODE)


def create_dir(path: Path) -> None:
    """Create ``path`` owner-only if missing; an existing one is the operator's (it may be a
    shared directory such as /tmp holding a configured database file) and is left alone."""
    path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)


def restrict(path: Path, *, create: bool = False) -> None:
    """Make ``path`` owner-only; with ``create``, first create it empty (0600) if missing."""
    if create:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, FILE_MODE))
    if path.exists():
        _tighten(path, FILE_MODE)


def _tighten(path: Path, mode: int) -> None:
    current = stat.S_IMODE(path.stat().st_mode)
    if current & ~mode == 0:
        return
    try:
        path.chmod(current & mode)
    except PermissionError:
        log.warning("cannot restrict %s (mode %o) to its owner: not ours", path, current)
        return
    log.warning("restricted %s from mode %o to %o (owner only)", path, current, current & mode)
