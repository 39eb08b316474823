"""Generators: their queries are the shared ones in ``records``."""

from __future__ import annotations

from brokkr.broker.db import tables
from brokkr.broker.db.records import Records
from brokkr.common import wire

_rows = Records(tables.generators, wire.Generator)
insert = _rows.insert
get = _rows.get
get_including_deleted = _rows.get_including_deleted
get_credential = _rows.get_credential
list_live = _rows.list_live
update = _rows.update
soft_delete = _rows.soft_delete
