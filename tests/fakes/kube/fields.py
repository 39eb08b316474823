"""managedFields, server-side apply and the other patch types.

Field ownership is tracked per manager as a set of leaf paths: a path ends at a non-map value
or at an empty map; lists are atomic (one leaf), unlike the real server's associative lists.
Sets are stored in the object itself as real ``managedFields`` entries (FieldsV1), so what a
client reads is what the fake reasons with.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .errors import ApiError

Obj = dict[str, Any]
Path = tuple[str, ...]

# Identity and system metadata: never owned by a manager, never taken from an apply.
SYSTEM_METADATA = (
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "managedFields",
    "selfLink",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
)


@dataclass
class Entry:
    """One managedFields entry."""

    manager: str
    operation: str
    api_version: str
    time: str
    subresource: str = ""
    fields: set[Path] = field(default_factory=set)

    def key(self) -> tuple[str, str, str]:
        return (self.manager, self.operation, self.subresource)

    def who(self) -> str:
        """How conflict messages name this manager."""
        text = f'"{self.manager}"'
        if self.subresource:
            text += f' with subresource "{self.subresource}"'
        if self.operation == "Update":
            text += f" using {self.api_version}"
        return text

    def encode(self) -> Obj:
        entry: Obj = {
            "manager": self.manager,
            "operation": self.operation,
            "apiVersion": self.api_version,
            "time": self.time,
            "fieldsType": "FieldsV1",
            "fieldsV1": to_fields_v1(self.fields),
        }
        if self.subresource:
            entry["subresource"] = self.subresource
        return entry


def managed_view(obj: Obj | None, scope: str) -> Obj:
    """The part of an object whose fields managers own.

    ``scope`` is ``"all"`` (no status subresource), ``"main"`` (status belongs to the status
    subresource) or ``"status"`` (only the status).
    """
    if not obj:
        return {}
    if scope == "status":
        return {"status": copy.deepcopy(obj["status"])} if "status" in obj else {}
    view = {k: copy.deepcopy(v) for k, v in obj.items() if k not in ("apiVersion", "kind")}
    if scope == "main":
        view.pop("status", None)
    metadata = {k: v for k, v in (view.get("metadata") or {}).items() if k not in SYSTEM_METADATA}
    view.pop("metadata", None)
    if metadata:
        view["metadata"] = metadata
    return view


def without_nulls(value: Any) -> Any:
    """Drop null map values, as decoding into Go structs does (``creationTimestamp: null``)."""
    if isinstance(value, dict):
        return {k: without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [without_nulls(v) for v in value]
    return value


def leaves(obj: Obj, prefix: Path = ()) -> dict[Path, Any]:
    """Leaf path -> value; a leaf is a non-map value or an empty map."""
    result: dict[Path, Any] = {}
    for key, value in obj.items():
        path = (*prefix, key)
        if isinstance(value, dict) and value:
            result.update(leaves(value, path))
        else:
            result[path] = value
    return result


def to_fields_v1(paths: Iterable[Path]) -> Obj:
    root: Obj = {}
    terminals: list[Obj] = []
    for path in paths:
        node = root
        for part in path:
            node = node.setdefault(f"f:{part}", {})
        terminals.append(node)
    for node in terminals:
        if node:
            node["."] = {}
    return _sorted(root)


def _sorted(tree: Obj) -> Obj:
    return {key: _sorted(tree[key]) for key in sorted(tree)}


def from_fields_v1(tree: Obj, prefix: Path = ()) -> set[Path]:
    result: set[Path] = set()
    for key, child in tree.items():
        if key == ".":
            result.add(prefix)
            continue
        path = (*prefix, key[2:] if key.startswith("f:") else key)
        if child:
            result |= from_fields_v1(child, path)
        else:
            result.add(path)
    return result


def parse_entries(obj: Obj | None) -> list[Entry]:
    entries = []
    for raw in ((obj or {}).get("metadata") or {}).get("managedFields") or []:
        if not raw or "manager" not in raw:
            continue
        entries.append(
            Entry(
                manager=raw["manager"],
                operation=raw.get("operation", "Update"),
                api_version=raw.get("apiVersion", ""),
                time=raw.get("time", ""),
                subresource=raw.get("subresource", ""),
                fields=from_fields_v1(raw.get("fieldsV1") or {}),
            )
        )
    return entries


def encode_entries(entries: list[Entry]) -> list[Obj]:
    return [entry.encode() for entry in entries if entry.fields]


def _find(entries: list[Entry], key: tuple[str, str, str]) -> Entry | None:
    return next((e for e in entries if e.key() == key), None)


def _get(obj: Obj, path: Path) -> tuple[bool, Any]:
    node: Any = obj
    for part in path:
        if not isinstance(node, dict) or part not in node:
            return False, None
        node = node[part]
    return True, node


def _remove(obj: Obj, path: Path, keep: set[Path]) -> None:
    """Delete a leaf, then the maps it leaves empty unless a kept path names them."""
    parents: list[Obj] = []
    node: Any = obj
    for part in path[:-1]:
        if not isinstance(node, dict) or part not in node:
            return
        parents.append(node)
        node = node[part]
    if not isinstance(node, dict):
        return
    node.pop(path[-1], None)
    for depth in range(len(path) - 1, 0, -1):
        parent, key = parents[depth - 1], path[depth - 1]
        prefix = path[:depth]
        if parent.get(key) or any(k[:depth] == prefix for k in keep):
            return
        del parent[key]


def deep_merge(target: Obj, patch: Obj) -> None:
    """Merge maps recursively; anything else (lists included) replaces."""
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict) and value:
            deep_merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)


def conflict_error(conflicts: list[tuple[Entry, Path]]) -> ApiError:
    def dotted(path: Path) -> str:
        return "." + ".".join(path)

    conflicts = sorted(conflicts, key=lambda c: (c[0].who(), c[1]))

    causes = [
        {
            "reason": "FieldManagerConflict",
            "message": f"conflict with {e.who()}",
            "field": dotted(p),
        }
        for e, p in conflicts
    ]
    if len(conflicts) == 1:
        entry, path = conflicts[0]
        message = f"Apply failed with 1 conflict: conflict with {entry.who()}: {dotted(path)}"
    else:
        by_manager: dict[str, list[str]] = {}
        for entry, path in conflicts:
            by_manager.setdefault(entry.who(), []).append(dotted(path))
        lines = []
        for who in sorted(by_manager):
            lines.append(f"conflicts with {who}:")
            lines.extend(f"- {p}" for p in by_manager[who])
        message = f"Apply failed with {len(conflicts)} conflicts: " + "\n".join(lines)
    return ApiError(409, "Conflict", message, {"causes": causes})


@dataclass
class ApplyRequest:
    """One server-side apply: who, how, and which part of the object it may touch."""

    manager: str
    force: bool
    api_version: str
    now: str
    scope: str  # see managed_view
    subresource: str = ""


def server_side_apply(live: Obj | None, applied: Obj, req: ApplyRequest) -> Obj:
    """The object after applying ``applied`` as ``req.manager``; raises 409 on conflicts.

    Identity fields (apiVersion, kind, name, namespace) are the caller's business.
    """
    view = managed_view(without_nulls(applied), req.scope)
    wanted = leaves(view)
    entries = parse_entries(live)
    mine = _find(entries, (req.manager, "Apply", req.subresource))
    previous = set(mine.fields) if mine else set()
    others = [e for e in entries if e is not mine]
    live_leaves = leaves(managed_view(live, req.scope))

    conflicts = [
        (entry, path)
        for path, value in wanted.items()
        if path not in live_leaves or live_leaves[path] != value
        for entry in others
        if path in entry.fields
    ]
    if conflicts and not req.force:
        raise conflict_error(conflicts)
    for entry, path in conflicts:
        entry.fields.discard(path)

    result = copy.deepcopy(live) if live else {}
    owned_by_others = set().union(*(e.fields for e in others)) if others else set()
    keep = owned_by_others | set(wanted)
    for path in previous - set(wanted):
        if path not in owned_by_others:
            _remove(result, path, keep)
    deep_merge(result, view)

    if mine is None:
        mine = Entry(req.manager, "Apply", req.api_version, req.now, req.subresource)
        entries.append(mine)
    after = leaves(managed_view(result, req.scope))
    touched = set(wanted) != previous or any(live_leaves.get(p) != after.get(p) for p in wanted)
    mine.fields = set(wanted)
    mine.api_version = req.api_version
    if touched:
        mine.time = req.now
    result.setdefault("metadata", {})["managedFields"] = encode_entries(entries)
    return result


def record_update(
    entries: list[Entry],
    old: Obj | None,
    new: Obj,
    *,
    manager: str,
    api_version: str,
    now: str,
    scope: str,
    subresource: str = "",
) -> list[Obj]:
    """managedFields after an Update (create, PUT, non-apply PATCH) by ``manager``."""
    old_leaves = leaves(managed_view(old, scope))
    new_leaves = leaves(managed_view(new, scope))
    changed = {p for p, v in new_leaves.items() if p not in old_leaves or old_leaves[p] != v}
    removed = set(old_leaves) - set(new_leaves)
    for entry in entries:
        entry.fields -= changed | removed
    if changed:
        mine = _find(entries, (manager, "Update", subresource))
        if mine is None:
            mine = Entry(manager, "Update", api_version, now, subresource)
            entries.append(mine)
        mine.fields |= changed
        mine.api_version = api_version
        mine.time = now
    return encode_entries(entries)


# --- the other patch types ---------------------------------------------------------------


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def strategic_merge_patch(target: Any, patch: Any) -> Any:
    """An approximation of strategic merge patch: a merge patch in which lists of maps that all
    carry a ``name`` merge by name (containers, env, volumes, ports); directives are dropped."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if key.startswith("$"):
            continue
        if value is None:
            result.pop(key, None)
        elif _named_list(value) and _named_list(result.get(key)):
            merged = {item["name"]: item for item in result[key]}
            for item in value:
                if item.get("$patch") == "delete":
                    merged.pop(item["name"], None)
                else:
                    merged[item["name"]] = strategic_merge_patch(merged.get(item["name"]), item)
            result[key] = list(merged.values())
        else:
            result[key] = strategic_merge_patch(result.get(key), value)
    return result


def _named_list(value: Any) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(i, dict) and "name" in i for i in value)
    )


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise _patch_error(f"JSON pointer must start with '/': {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _patch_error(detail: str) -> ApiError:
    return ApiError(422, "Invalid", f"the server rejected our request due to an error: {detail}")


def _container(doc: Any, parts: list[str]) -> Any:
    node = doc
    for part in parts[:-1]:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            raise _patch_error(f"doc is missing path: /{'/'.join(parts)}")
    return node


def _op_get(doc: Any, parts: list[str]) -> Any:
    if not parts:
        return doc
    node = _container(doc, parts)
    last = parts[-1]
    if isinstance(node, dict) and last in node:
        return node[last]
    if isinstance(node, list) and last.isdigit() and int(last) < len(node):
        return node[int(last)]
    raise _patch_error(f"doc is missing key: /{'/'.join(parts)}")


def _op_remove(doc: Any, parts: list[str]) -> Any:
    value = _op_get(doc, parts)
    node = _container(doc, parts)
    if isinstance(node, dict):
        del node[parts[-1]]
    else:
        del node[int(parts[-1])]
    return value


def _op_add(doc: Any, parts: list[str], value: Any, replace: bool) -> Any:
    if not parts:
        return copy.deepcopy(value)
    if replace:
        _op_get(doc, parts)
    node = _container(doc, parts)
    last = parts[-1]
    if isinstance(node, dict):
        node[last] = copy.deepcopy(value)
    elif isinstance(node, list):
        if last == "-":
            node.append(copy.deepcopy(value))
        elif last.isdigit() and int(last) <= len(node):
            if replace:
                node[int(last)] = copy.deepcopy(value)
            else:
                node.insert(int(last), copy.deepcopy(value))
        else:
            raise _patch_error(f"invalid index in /{'/'.join(parts)}")
    else:
        raise _patch_error(f"doc is missing path: /{'/'.join(parts)}")
    return doc


def json_patch(doc: Any, operations: Any) -> Any:
    """RFC 6902 JSON patch."""
    if not isinstance(operations, list):
        raise ApiError(400, "BadRequest", "json: cannot unmarshal object into Go value of type []")
    doc = copy.deepcopy(doc)
    for op in operations:
        kind, parts = op.get("op"), _pointer(op.get("path", ""))
        if kind in ("add", "replace"):
            doc = _op_add(doc, parts, op.get("value"), replace=kind == "replace")
        elif kind == "remove":
            _op_remove(doc, parts)
        elif kind in ("move", "copy"):
            source = _pointer(op.get("from", ""))
            value = _op_remove(doc, source) if kind == "move" else _op_get(doc, source)
            doc = _op_add(doc, parts, value, replace=False)
        elif kind == "test":
            if _op_get(doc, parts) != op.get("value"):
                raise _patch_error(f"testing value /{'/'.join(parts)} failed")
        else:
            raise _patch_error(f"Unexpected kind: {kind}")
    return doc
