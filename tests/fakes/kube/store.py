"""The cluster's state: objects, the global resourceVersion, watch events, CRDs, GC.

Every public method takes the lock: the ASGI app runs in the server's thread while tests
inspect and seed from theirs.
"""

from __future__ import annotations

import base64
import copy
import dataclasses
import json
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from . import errors, schemas
from .errors import ApiError
from .fields import (
    ApplyRequest,
    json_patch,
    merge_patch,
    parse_entries,
    record_update,
    server_side_apply,
    strategic_merge_patch,
)
from .resources import BUILTIN, CRD_TYPE, NAMESPACE_TYPE, ResourceType, crd_resource_types
from .selectors import Predicate
from .validation import Defaulter, validate

Obj = dict[str, Any]
Key = tuple[str, str]  # (namespace, name); namespace "" for cluster-scoped objects

SYSTEM_MANAGER = "kube-controller-manager"
METADATA_ORDER = (
    "name",
    "generateName",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "labels",
    "annotations",
    "ownerReferences",
    "finalizers",
    "managedFields",
)
BOOT_NAMESPACES = ("default", "kube-node-lease", "kube-public", "kube-system")
# Appended to a container name (which cannot hold a "/") to key its previous instance's log.
PREVIOUS_LOG = "/previous"


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class LogLine:
    stamp: int  # when it was written, nanoseconds since the epoch
    text: str  # with its line end, if it has one


@dataclass(frozen=True)
class LogView:
    """A container's log as ``pods/log`` reads it, and the instance that writes it (the pod's
    uid and the container's restart generation: a follow stream ends when it changes)."""

    lines: list[LogLine]
    instance: tuple[str, int]


@dataclass(frozen=True)
class WatchEvent:
    rv: int
    storage_key: str
    namespace: str
    type: str  # ADDED, MODIFIED, DELETED
    obj: Obj


@dataclass(frozen=True)
class WriteOptions:
    manager: str
    dry_run: bool = False
    subresource: str = ""
    # Requests default to Warn like the real server; seeding from tests is Strict to catch typos.
    field_validation: str = "Strict"
    # Filled by the write; the app sends them as Warning headers.
    warnings: list[str] = dataclasses.field(default_factory=list)


def _meta(obj: Obj) -> Obj:
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        meta = obj["metadata"] = {}
    return meta


class Cluster:
    """An in-memory kube-apiserver storage with the real API's write semantics."""

    def __init__(
        self,
        *,
        crd_establish_delay: float = 0.0,
        namespace_content: bool = True,
        namespace_termination_delay: float = 0.0,
    ) -> None:
        self.lock = threading.RLock()
        self.crd_establish_delay = crd_establish_delay
        self.namespace_termination_delay = namespace_termination_delay
        self._namespaces_due: dict[str, float] = {}
        self.namespace_content = namespace_content
        self._rv = 100
        self._objects: dict[str, dict[Key, Obj]] = {}
        self._events: list[WatchEvent] = []
        self._crd_due: dict[str, float] = {}
        # Per (namespace, pod, container key): the log's lines (ends kept) with the time each
        # was written, in nanoseconds since the epoch; and which instance of the container
        # writes it (restart_container starts a new one).
        self._pod_logs: dict[tuple[str, str, str], list[LogLine]] = {}
        self._log_instances: dict[tuple[str, str, str], int] = {}
        self._last_stamp = 0
        self._defaulter = Defaulter()
        with self.lock:
            for name in BOOT_NAMESPACES:
                self.create(
                    NAMESPACE_TYPE, "", {"metadata": {"name": name}}, WriteOptions("kube-apiserver")
                )
            node = {
                "metadata": {"name": "fake-node", "labels": {"kubernetes.io/hostname": "fake-node"}}
            }
            self.create(self.type_for("v1", "Node"), "", node, WriteOptions("kubelet"))
            service = {
                "metadata": {"name": "kubernetes", "labels": {"component": "apiserver"}},
                "spec": {"ports": [{"name": "https", "port": 443, "targetPort": 6443}]},
            }
            self.create(
                self.type_for("v1", "Service"), "default", service, WriteOptions("kube-apiserver")
            )

    # --- resource types ---------------------------------------------------------------------

    def types(self) -> list[ResourceType]:
        """Built-in types, then those of Established CRDs."""
        with self.lock:
            result = list(BUILTIN)
            for crd in sorted(self._bucket(CRD_TYPE).values(), key=lambda c: c["metadata"]["name"]):
                if _established(crd) and not _meta(crd).get("deletionTimestamp"):
                    result.extend(crd_resource_types(crd))
            return result

    def resolve(self, group: str, version: str, plural: str) -> ResourceType | None:
        return next(
            (t for t in self.types() if (t.group, t.version, t.plural) == (group, version, plural)),
            None,
        )

    def type_for(self, api_version: str | None, kind: str) -> ResourceType:
        """By kind (or plural), optionally narrowed by apiVersion; for the test helpers."""
        for rt in self.types():
            if kind in (rt.kind, rt.plural) and api_version in (None, rt.group_version):
                return rt
        raise KeyError(f"no resource type {api_version or '*'}/{kind}")

    def _bucket(self, rt: ResourceType | str) -> dict[Key, Obj]:
        key = rt if isinstance(rt, str) else rt.storage_key
        return self._objects.setdefault(key, {})

    # --- reads --------------------------------------------------------------------------------

    @property
    def resource_version(self) -> int:
        return self._rv

    def tick(self) -> None:
        """Make due CRDs Established and finish due namespace deletions (called before every
        request and inspection)."""
        with self.lock:
            due = [n for n, t in self._crd_due.items() if t <= time.monotonic()]
            for name in due:
                del self._crd_due[name]
                self._establish(name)
            gone = [n for n, t in self._namespaces_due.items() if t <= time.monotonic()]
            for name in gone:
                del self._namespaces_due[name]
                self._finalize_namespace(name)

    def render(self, rt: ResourceType, obj: Obj) -> Obj:
        """A copy as the API shows it: apiVersion and kind of ``rt``, keys in the usual order."""
        out = copy.deepcopy(obj)
        out.pop("apiVersion", None)
        out.pop("kind", None)
        meta = out.pop("metadata", {})
        ordered = {k: meta[k] for k in METADATA_ORDER if k in meta}
        ordered.update({k: v for k, v in meta.items() if k not in ordered})
        return {"apiVersion": rt.group_version, "kind": rt.kind, "metadata": ordered, **out}

    def get(self, rt: ResourceType, namespace: str, name: str) -> Obj:
        with self.lock:
            obj = self._bucket(rt).get((namespace, name))
            if obj is None:
                raise errors.not_found(rt, name)
            return self.render(rt, obj)

    def find(self, rt: ResourceType, namespace: str, name: str) -> Obj | None:
        with self.lock:
            obj = self._bucket(rt).get((namespace if rt.namespaced else "", name))
            return None if obj is None else self.render(rt, obj)

    def select(
        self, rt: ResourceType, namespace: str | None, predicates: list[Predicate]
    ) -> list[Obj]:
        """Matching objects, sorted like etcd keys (namespace, then name)."""
        with self.lock:
            items = []
            for (ns, _), obj in sorted(self._bucket(rt).items()):
                if namespace is not None and rt.namespaced and ns != namespace:
                    continue
                # Selectors read labels and fields the stored object has as rendered: copy only
                # the matches (a selective LIST over thousands of pods stays cheap).
                if all(p(obj) for p in predicates):
                    items.append(self.render(rt, obj))
            return items

    def list_objects(
        self,
        rt: ResourceType,
        namespace: str | None,
        predicates: list[Predicate],
        limit: int = 0,
        continue_token: str = "",
    ) -> Obj:
        with self.lock:
            items = self.select(rt, namespace, predicates)
            list_rv = str(self._rv)
            start = 0
            if continue_token:
                try:
                    state = json.loads(base64.urlsafe_b64decode(continue_token.encode()))
                    start, list_rv = int(state["start"]), state["rv"]
                except (ValueError, KeyError, TypeError):
                    raise errors.bad_request("continue key is not valid: illegal base64") from None
            metadata: Obj = {"resourceVersion": list_rv}
            page = items[start:]
            if limit and len(page) > limit:
                page = page[:limit]
                token = json.dumps({"start": start + limit, "rv": list_rv}).encode()
                metadata["continue"] = base64.urlsafe_b64encode(token).decode()
                metadata["remainingItemCount"] = len(items) - start - limit
            if not rt.custom:
                for item in page:
                    item.pop("apiVersion", None)
                    item.pop("kind", None)
            return {
                "kind": rt.list_kind,
                "apiVersion": rt.group_version,
                "metadata": metadata,
                "items": page,
            }

    def events_after(self, rv: int) -> list[WatchEvent]:
        with self.lock:
            if not self._events or self._events[-1].rv <= rv:
                return []
            low, high = 0, len(self._events)
            while low < high:
                mid = (low + high) // 2
                if self._events[mid].rv <= rv:
                    low = mid + 1
                else:
                    high = mid
            return self._events[low:]

    # --- writes -------------------------------------------------------------------------------

    def _commit(self, rt: ResourceType, obj: Obj, event: str) -> Obj:
        """Store (or, for DELETED, drop) ``obj`` at a new resourceVersion."""
        self._rv += 1
        meta = _meta(obj)
        meta["resourceVersion"] = str(self._rv)
        key = (meta.get("namespace", "") if rt.namespaced else "", meta["name"])
        if event == "DELETED":
            self._bucket(rt).pop(key, None)
        else:
            self._bucket(rt)[key] = obj
        self._events.append(WatchEvent(self._rv, rt.storage_key, key[0], event, copy.deepcopy(obj)))
        return obj

    def _require_namespace(self, rt: ResourceType, namespace: str, name: str) -> None:
        if not rt.namespaced:
            return
        ns = self._bucket(NAMESPACE_TYPE).get(("", namespace))
        if ns is None:
            raise errors.namespace_not_found(namespace)
        if _meta(ns).get("deletionTimestamp"):
            raise errors.forbidden_terminating(rt, name, namespace)

    def _check_body(self, rt: ResourceType, namespace: str, body: Any) -> Obj:
        if not isinstance(body, dict):
            raise errors.bad_request(
                f"the object provided is unrecognized (must be of type {rt.kind}): "
                "couldn't get version/kind; json parse error"
            )
        api_version, kind = body.get("apiVersion"), body.get("kind")
        if api_version and api_version != rt.group_version:
            raise errors.bad_request(
                f"the API version in the data ({api_version}) does not match the expected API "
                f"version ({rt.group_version})"
            )
        if kind and kind != rt.kind:
            raise errors.bad_request(
                f"the kind in the data ({kind}) does not match the expected kind ({rt.kind})"
            )
        meta = _meta(body)
        if rt.namespaced:
            if meta.get("namespace") and meta["namespace"] != namespace:
                raise errors.bad_request(
                    "the namespace of the provided object does not match the namespace sent on "
                    "the request"
                )
            meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)
        return body

    def _finish(self, rt: ResourceType, obj: Obj, old: Obj | None) -> None:
        """Defaults, validation and generation: the common tail of every write."""
        if not rt.custom:  # typed decoding forgets nulls; custom resources keep them
            _drop_nulls(obj)
        self._defaulter.apply(rt, obj, old)
        validate(rt, obj, old)
        if rt.generation:
            generation = _meta(old).get("generation", 1) if old else 1
            if old and _spec_view(obj) != _spec_view(old):
                generation += 1
            _meta(obj)["generation"] = generation

    def create(self, rt: ResourceType, namespace: str, body: Any, opts: WriteOptions) -> Obj:
        with self.lock:
            obj = copy.deepcopy(self._check_body(rt, namespace, body))
            opts.warnings.extend(schemas.decode(rt, obj, opts.field_validation))
            meta = _meta(obj)
            if not meta.get("name") and meta.get("generateName"):
                meta["name"] = meta["generateName"] + _random_suffix()
            name = meta.get("name") or ""
            self._require_namespace(rt, namespace, name)
            if meta.get("resourceVersion"):
                raise errors.internal("resourceVersion should not be set on objects to be created")
            existing = self._bucket(rt).get((namespace if rt.namespaced else "", name))
            if name and existing is not None:
                raise errors.already_exists(
                    rt, name, deleting=bool(_meta(existing).get("deletionTimestamp"))
                )
            self._stamp_new(rt, obj)
            if rt.has_status_subresource:
                obj.pop("status", None)
            self._finish(rt, obj, None)
            meta["managedFields"] = record_update(
                [],
                None,
                obj,
                manager=opts.manager,
                api_version=rt.group_version,
                now=meta["creationTimestamp"],
                scope=_scope(rt),
            )
            return self._created(rt, obj, opts)

    def _stamp_new(self, rt: ResourceType, obj: Obj) -> None:
        meta = _meta(obj)
        for field in ("deletionTimestamp", "deletionGracePeriodSeconds"):
            meta.pop(field, None)
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = now_rfc3339()
        obj["apiVersion"], obj["kind"] = rt.group_version, rt.kind

    def _created(self, rt: ResourceType, obj: Obj, opts: WriteOptions) -> Obj:
        if opts.dry_run:
            return self.render(rt, obj)
        self._commit(rt, obj, "ADDED")
        if rt is NAMESPACE_TYPE and self.namespace_content:
            self._populate_namespace(obj["metadata"]["name"])
        if rt.storage_key == CRD_TYPE.storage_key:
            self._crd_due[obj["metadata"]["name"]] = time.monotonic() + self.crd_establish_delay
        rendered = self.render(rt, obj)
        self._collect_garbage()
        return rendered

    def update(
        self, rt: ResourceType, namespace: str, name: str, body: Any, opts: WriteOptions
    ) -> Obj:
        with self.lock:
            old = self._bucket(rt).get((namespace, name))
            if old is None:
                raise errors.not_found(rt, name)
            return self._update_from(rt, namespace, name, body, old, opts)

    def _update_from(
        self, rt: ResourceType, namespace: str, name: str, body: Any, old: Obj, opts: WriteOptions
    ) -> Obj:
        obj = copy.deepcopy(self._check_body(rt, namespace, body))
        opts.warnings.extend(schemas.decode(rt, obj, opts.field_validation))
        meta, old_meta = _meta(obj), old["metadata"]
        if meta.get("name") != name:
            raise errors.bad_request(
                f"the name of the object ({meta.get('name', '')}) does not match the name on the "
                f"URL ({name})"
            )
        rv = meta.get("resourceVersion")
        if rv and rv != old_meta["resourceVersion"]:
            raise errors.stale(rt, name)
        if meta.get("uid") and meta["uid"] != old_meta["uid"]:
            raise errors.conflict(
                rt,
                name,
                f"Precondition failed: UID in precondition: {meta['uid']}, UID in object meta: "
                f"{old_meta['uid']}",
            )
        if "managedFields" in meta and meta["managedFields"] is not None:
            entries = parse_entries(obj)
        else:
            entries = parse_entries(old)
        obj = _split_status(rt, obj, old, opts.subresource)
        meta = _meta(obj)
        for field in (
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
        ):
            if field in old_meta:
                meta[field] = old_meta[field]
            else:
                meta.pop(field, None)
        meta["resourceVersion"] = old_meta["resourceVersion"]
        obj["apiVersion"], obj["kind"] = rt.group_version, rt.kind
        self._finish(rt, obj, old)
        meta["managedFields"] = record_update(
            entries,
            old,
            obj,
            manager=opts.manager,
            api_version=rt.group_version,
            now=now_rfc3339(),
            scope=_scope(rt, opts.subresource),
            subresource=opts.subresource,
        )
        return self._updated(rt, obj, old, opts)

    def _updated(self, rt: ResourceType, obj: Obj, old: Obj, opts: WriteOptions) -> Obj:
        if obj == old or opts.dry_run:
            return self.render(rt, obj)
        meta = _meta(obj)
        # A namespace also waits for the namespace controller (its spec.finalizers).
        held = rt is NAMESPACE_TYPE and (obj.get("spec") or {}).get("finalizers")
        if meta.get("deletionTimestamp") and not meta.get("finalizers") and not held:
            self._remove(rt, obj)
            self._collect_garbage()
            return self.render(rt, obj)
        self._commit(rt, obj, "MODIFIED")
        rendered = self.render(rt, obj)
        self._collect_garbage()
        return rendered

    def patch(
        self,
        rt: ResourceType,
        namespace: str,
        name: str,
        patch_type: str,
        body: Any,
        opts: WriteOptions,
        force: bool = False,
    ) -> tuple[Obj, bool]:
        """Returns the object and whether it was created (server-side apply only)."""
        with self.lock:
            if patch_type == "apply":
                return self._apply(rt, namespace, name, body, opts, force)
            old = self._bucket(rt).get((namespace, name))
            if old is None:
                raise errors.not_found(rt, name)
            patcher: Callable[[Any, Any], Any] = {
                "merge": merge_patch,
                "strategic": strategic_merge_patch,
                "json": json_patch,
            }[patch_type]
            patched = patcher(self.render(rt, old), body)
            return self._update_from(rt, namespace, name, patched, old, opts), False

    def _apply(
        self,
        rt: ResourceType,
        namespace: str,
        name: str,
        body: Any,
        opts: WriteOptions,
        force: bool,
    ) -> tuple[Obj, bool]:
        if not isinstance(body, dict):
            raise errors.bad_request("error decoding YAML: the apply patch must be a YAML map")
        for field in ("apiVersion", "kind"):
            if not body.get(field):
                raise errors.bad_request(
                    f"Object '{'Kind' if field == 'kind' else 'apiVersion'}' is missing in "
                    f"'{json.dumps(body, separators=(',', ':'))}'"
                )
        body = self._check_body(rt, namespace, copy.deepcopy(body))
        meta = _meta(body)
        if meta.get("name") != name:
            raise errors.bad_request(
                f"the name of the object ({meta.get('name', '')}) does not match the name on the "
                f"URL ({name})"
            )
        if meta.get("managedFields") is not None:
            raise errors.bad_request("metadata.managedFields must be nil")
        schemas.check_apply_patch(rt, namespace, name, body)
        old = self._bucket(rt).get((namespace, name))
        request = ApplyRequest(
            manager=opts.manager,
            force=force,
            api_version=rt.group_version,
            now=now_rfc3339(),
            scope=_scope(rt, opts.subresource),
            subresource=opts.subresource,
        )
        if old is None:
            # Creating, so the namespace must exist and not be Terminating; an update of an
            # object inside a Terminating namespace is allowed, as on a real server.
            self._require_namespace(rt, namespace, name)
            if opts.subresource:
                raise errors.not_found(rt, name)
            obj = server_side_apply(None, body, request)
            obj["metadata"]["name"] = name
            if rt.namespaced:
                obj["metadata"]["namespace"] = namespace
            self._stamp_new(rt, obj)
            self._finish(rt, obj, None)
            return self._created(rt, obj, opts), True
        rv = meta.get("resourceVersion")
        if rv and rv != old["metadata"]["resourceVersion"]:
            raise errors.stale(rt, name)
        obj = server_side_apply(old, body, request)
        obj["apiVersion"], obj["kind"] = rt.group_version, rt.kind
        self._finish(rt, obj, old)
        return self._updated(rt, obj, old, opts), False

    # --- deletion and garbage collection ------------------------------------------------------

    def delete(
        self, rt: ResourceType, namespace: str, name: str, options: Obj, dry_run: bool = False
    ) -> Obj:
        """Delete like the real server; returns the response body."""
        with self.lock:
            obj = self._bucket(rt).get((namespace, name))
            if obj is None:
                raise errors.not_found(rt, name)
            _check_preconditions(rt, name, obj, options.get("preconditions") or {})
            policy = _propagation(options)
            if dry_run:
                return self.render(rt, obj) if rt.delete_returns_object else _success(rt, obj)
            obj = copy.deepcopy(obj)
            meta = _meta(obj)
            if meta.get("deletionTimestamp"):
                return self.render(rt, obj)
            meta["deletionTimestamp"] = now_rfc3339()
            meta["deletionGracePeriodSeconds"] = 0
            if rt is NAMESPACE_TYPE:
                # The namespace controller empties it later; until then it is Terminating.
                obj.setdefault("status", {})["phase"] = "Terminating"
                self._commit(rt, obj, "MODIFIED")
                self._namespaces_due[meta["name"]] = (
                    time.monotonic() + self.namespace_termination_delay
                )
                return self.render(rt, obj)
            shown = obj
            if policy == "Orphan":
                self._orphan_dependents(meta["uid"])
            elif policy == "Foreground":
                self._delete_dependents(meta["uid"])
                shown = copy.deepcopy(obj)
                _meta(shown)["finalizers"] = [*(meta.get("finalizers") or []), "foregroundDeletion"]
            if meta.get("finalizers"):
                self._commit(rt, obj, "MODIFIED")
                return self.render(rt, obj)
            self._remove(rt, obj)
            self._collect_garbage()
            if policy == "Foreground":
                return self.render(rt, shown)
            return self.render(rt, obj) if rt.delete_returns_object else _success(rt, obj)

    def delete_collection(
        self, rt: ResourceType, namespace: str | None, predicates: list[Predicate], options: Obj
    ) -> Obj:
        with self.lock:
            items = self.select(rt, namespace, predicates)
            for item in items:
                meta = item["metadata"]
                if (meta.get("namespace", ""), meta["name"]) in self._bucket(rt):
                    self.delete(
                        rt, meta.get("namespace", ""), meta["name"], options, _dry_run(options)
                    )
            return {
                "kind": rt.list_kind,
                "apiVersion": rt.group_version,
                "metadata": {"resourceVersion": str(self._rv)},
                "items": items,
            }

    def _remove(self, rt: ResourceType, obj: Obj) -> None:
        """Really delete: contents of a namespace and CRs of a CRD go first."""
        name = obj["metadata"]["name"]
        if rt is NAMESPACE_TYPE:
            self._remove_contents(name)
        if rt.storage_key == CRD_TYPE.storage_key:
            self._crd_due.pop(name, None)
            for crd_type in crd_resource_types(obj)[:1]:
                for child in list(self._bucket(crd_type).values()):
                    self._commit(crd_type, copy.deepcopy(child), "DELETED")
        self._commit(rt, obj, "DELETED")

    def _remove_contents(self, namespace: str) -> None:
        for key, bucket in list(self._objects.items()):
            for (ns, _), child in list(bucket.items()):
                if ns == namespace and key != NAMESPACE_TYPE.storage_key:
                    self._commit(self._type_of(key), copy.deepcopy(child), "DELETED")
        for log_key in [k for k in self._pod_logs if k[0] == namespace]:
            del self._pod_logs[log_key]

    def _finalize_namespace(self, name: str) -> None:
        """The namespace controller's work: delete the content, then the namespace, unless
        finalizers of others still hold it (it goes when they are removed)."""
        namespace = self._bucket(NAMESPACE_TYPE).get(("", name))
        if namespace is None:
            return
        self._remove_contents(name)
        if _meta(namespace).get("finalizers"):
            finished = copy.deepcopy(namespace)
            finished.setdefault("spec", {})["finalizers"] = []
            self._commit(NAMESPACE_TYPE, finished, "MODIFIED")
        else:
            self._commit(NAMESPACE_TYPE, copy.deepcopy(namespace), "DELETED")
        self._collect_garbage()

    def _type_of(self, storage_key: str) -> ResourceType:
        for rt in BUILTIN:
            if rt.storage_key == storage_key:
                return rt
        for crd in self._bucket(CRD_TYPE).values():
            for rt in crd_resource_types(crd):
                if rt.storage_key == storage_key:
                    return rt
        return ResourceType(
            group="", version="v1", kind="Unknown", plural=storage_key, namespaced=True
        )

    def _all(self) -> list[tuple[ResourceType, Obj]]:
        return [
            (self._type_of(key), obj)
            for key, bucket in list(self._objects.items())
            for obj in list(bucket.values())
        ]

    def _dependents(self, uid: str) -> list[tuple[ResourceType, Obj]]:
        return [
            (rt, obj)
            for rt, obj in self._all()
            if any(ref.get("uid") == uid for ref in _meta(obj).get("ownerReferences") or [])
        ]

    def _orphan_dependents(self, uid: str) -> None:
        for rt, obj in self._dependents(uid):
            self._set_owner_references(rt, obj, lambda ref: ref.get("uid") != uid)

    def _delete_dependents(self, uid: str) -> None:
        for rt, obj in self._dependents(uid):
            meta = _meta(obj)
            key = (meta.get("namespace", ""), meta["name"])
            if key in self._bucket(rt):
                self.delete(rt, key[0], key[1], {"propagationPolicy": "Foreground"})

    def _set_owner_references(
        self, rt: ResourceType, obj: Obj, keep: Callable[[Obj], bool]
    ) -> None:
        new = copy.deepcopy(obj)
        refs = [ref for ref in _meta(new).get("ownerReferences") or [] if keep(ref)]
        if refs:
            _meta(new)["ownerReferences"] = refs
        else:
            _meta(new).pop("ownerReferences", None)
        _meta(new)["managedFields"] = record_update(
            parse_entries(obj),
            obj,
            new,
            manager=SYSTEM_MANAGER,
            api_version=rt.group_version,
            now=now_rfc3339(),
            scope=_scope(rt),
        )
        self._commit(rt, new, "MODIFIED")

    def _collect_garbage(self) -> None:
        """Delete objects whose owners are all gone; drop references to gone owners."""
        changed = True
        while changed:
            changed = False
            uids = {str(_meta(obj).get("uid")) for _, obj in self._all()}
            for rt, obj in self._all():
                meta = _meta(obj)
                refs = meta.get("ownerReferences") or []
                alive = [ref for ref in refs if ref.get("uid") in uids]
                if not refs or len(alive) == len(refs) or meta.get("deletionTimestamp"):
                    continue
                changed = True
                if alive:
                    self._set_owner_references(rt, obj, _refers_to(uids))
                else:
                    self.delete(rt, meta.get("namespace", ""), meta["name"], {})
                break

    # --- CRDs, namespaces, pods ---------------------------------------------------------------

    def _establish(self, name: str) -> None:
        old = self._bucket(CRD_TYPE).get(("", name))
        if old is None or _established(old):
            return
        crd = copy.deepcopy(old)
        spec = crd.get("spec") or {}
        now = now_rfc3339()
        names = dict(spec.get("names") or {})
        names.setdefault("singular", names.get("kind", "").lower())
        names.setdefault("listKind", f"{names.get('kind', '')}List")
        crd["status"] = {
            "acceptedNames": names,
            "conditions": [
                _condition("NamesAccepted", "NoConflicts", "no conflicts found", now),
                _condition(
                    "Established",
                    "InitialNamesAccepted",
                    "the initial names have been accepted",
                    now,
                ),
            ],
            "storedVersions": [v["name"] for v in spec.get("versions") or [] if v.get("storage")],
        }
        _meta(crd)["managedFields"] = record_update(
            parse_entries(old),
            old,
            crd,
            manager="kube-apiserver",
            api_version=CRD_TYPE.group_version,
            now=now,
            scope="status",
            subresource="status",
        )
        self._commit(CRD_TYPE, crd, "MODIFIED")

    def _populate_namespace(self, namespace: str) -> None:
        opts = WriteOptions(SYSTEM_MANAGER)
        root_ca = {
            "metadata": {
                "name": "kube-root-ca.crt",
                "annotations": {"kubernetes.io/description": "Contains a CA bundle"},
            },
            "data": {
                "ca.crt": "-----BEGIN CERTIFICATE-----\nZmFrZQ==\n-----END CERTIFICATE-----\n"
            },
        }
        self.create(self.type_for("v1", "ConfigMap"), namespace, root_ca, opts)
        self.create(
            self.type_for("v1", "ServiceAccount"),
            namespace,
            {"metadata": {"name": "default"}},
            opts,
        )

    def _stamp(self) -> int:
        """Now in nanoseconds, strictly after every stamp given before (lines keep their order)."""
        self._last_stamp = max(time.time_ns(), self._last_stamp + 1)
        return self._last_stamp

    def set_pod_log(
        self, namespace: str, pod: str, container: str, text: str, *, previous: bool = False
    ) -> None:
        """``previous``: the log of the container's previous (terminated) instance. Every line is
        stamped now."""
        with self.lock:
            key = f"{container}{PREVIOUS_LOG}" if previous else container
            stamp = self._stamp()
            lines = [LogLine(stamp, line) for line in text.splitlines(keepends=True)]
            self._pod_logs[(namespace, pod, key)] = lines

    def append_pod_log(self, namespace: str, pod: str, container: str, lines: list[str]) -> None:
        """The container writes ``lines`` (without line ends) now, one stamp each."""
        with self.lock:
            log = self._pod_logs.setdefault((namespace, pod, container), [])
            if log and not log[-1].text.endswith("\n"):
                log[-1] = LogLine(log[-1].stamp, log[-1].text + "\n")
            log.extend(LogLine(self._stamp(), f"{line}\n") for line in lines)

    def restart_container(self, namespace: str, pod: str, container: str) -> Obj:
        """As the kubelet restarting a container: its log becomes the previous instance's, the
        new instance's log starts empty, and the pod's status gets restartCount + 1 and a new
        containerID. The pod as it is now."""
        with self.lock:
            rt = self.type_for("v1", "Pod")
            obj = copy.deepcopy(self.get(rt, namespace, pod))
            key = (namespace, pod, container)
            self._pod_logs[(namespace, pod, f"{container}{PREVIOUS_LOG}")] = self._pod_logs.pop(
                key, []
            )
            self._log_instances[key] = self._log_instances.get(key, 0) + 1
            status = obj.setdefault("status", {})
            statuses = status.setdefault("containerStatuses", [])
            entry = next((s for s in statuses if s.get("name") == container), None)
            if entry is None:
                image = next(
                    (
                        c.get("image", "")
                        for c in (obj.get("spec") or {}).get("containers") or []
                        if c.get("name") == container
                    ),
                    "",
                )
                entry = {"name": container, "image": image, "imageID": "", "ready": False}
                statuses.append(entry)
            entry["restartCount"] = int(entry.get("restartCount") or 0) + 1
            entry["containerID"] = f"containerd://{secrets.token_hex(32)}"
            entry["state"] = {"running": {"startedAt": now_rfc3339()}}
            return self.update(
                rt, namespace, pod, obj, WriteOptions("kubelet", subresource="status")
            )

    def log_view(
        self, namespace: str, name: str, container: str | None, *, previous: bool = False
    ) -> tuple[str, LogView]:
        """A container's log (``container`` None: the pod's only container) and the container's
        name; raises as ``pods/log`` answers a missing pod, an ambiguous or unknown container, or
        a previous instance that never was."""
        with self.lock:
            rt = self.type_for("v1", "Pod")
            pod = self._bucket(rt).get((namespace, name))
            if pod is None:
                raise errors.not_found(rt, name)
            spec = pod.get("spec") or {}
            names = [c.get("name") for c in spec.get("containers") or []]
            init = [c.get("name") for c in spec.get("initContainers") or []]
            if container is None:
                if len(names) != 1:
                    raise errors.bad_request(
                        f"a container name must be specified for pod {name}, choose one of: "
                        f"[{' '.join(str(n) for n in names)}]"
                        + (f" or one of the init containers: [{' '.join(init)}]" if init else "")
                    )
                container = str(names[0])
            elif container not in names + init:
                raise errors.bad_request(f"container {container} is not valid for pod {name}")
            if previous:
                key = (namespace, name, f"{container}{PREVIOUS_LOG}")
                if key not in self._pod_logs:
                    raise errors.bad_request(
                        f'previous terminated container "{container}" in pod "{name}" not found'
                    )
                lines = self._pod_logs[key]
            else:
                lines = self._pod_logs.get((namespace, name, container), [])
            instance = (
                str(pod["metadata"]["uid"]),
                self._log_instances.get((namespace, name, container), 0),
            )
            return container, LogView(list(lines), instance)

    def log_lines_after(
        self, namespace: str, name: str, container: str, instance: tuple[str, int], start: int
    ) -> list[LogLine] | None:
        """The lines of the current log from index ``start`` on, for a follow stream; None once
        the pod is gone or the container restarted (another ``instance``)."""
        with self.lock:
            pod = self._bucket(self.type_for("v1", "Pod")).get((namespace, name))
            if pod is None or str(pod["metadata"]["uid"]) != instance[0]:
                return None
            if self._log_instances.get((namespace, name, container), 0) != instance[1]:
                return None
            return list(self._pod_logs.get((namespace, name, container), [])[start:])

    def pod_log(
        self,
        namespace: str,
        name: str,
        container: str | None,
        tail: int | None,
        *,
        previous: bool = False,
        limit_bytes: int | None = None,
    ) -> str:
        """As the kubelet serves it: ``tailLines`` first, then at most ``limitBytes`` bytes (cut
        wherever they end, mid-line or mid-character); a ``previous`` log only once one was set."""
        _, view = self.log_view(namespace, name, container, previous=previous)
        return render_log(view.lines, tail=tail, limit_bytes=limit_bytes)


def rfc3339_nano(stamp: int) -> str:
    """The kubelet's fixed-width RFC 3339 with nanoseconds, e.g. 2024-05-01T12:00:00.123456789Z."""
    seconds, nanos = divmod(stamp, 1_000_000_000)
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{nanos:09d}Z"


def render_log(
    lines: list[LogLine],
    *,
    tail: int | None = None,
    limit_bytes: int | None = None,
    timestamps: bool = False,
    since: int | None = None,
) -> str:
    """The text ``pods/log`` sends: lines at or after ``since`` (nanoseconds), the last
    ``tail`` of them, each prefixed with its stamp when ``timestamps``, then at most
    ``limit_bytes`` bytes."""
    if since is not None:
        lines = [line for line in lines if line.stamp >= since]
    if tail is not None:
        lines = lines[-tail:] if tail > 0 else []
    text = "".join(
        f"{rfc3339_nano(line.stamp)} {line.text}" if timestamps else line.text for line in lines
    )
    if limit_bytes is not None:
        # A cut character stays cut, as on the wire: app.py encodes it back as it was.
        text = text.encode()[:limit_bytes].decode(errors="surrogateescape")
    return text


def _split_status(rt: ResourceType, obj: Obj, old: Obj, subresource: str) -> Obj:
    """A status write changes only the status; a main write leaves a status subresource's alone."""
    if subresource == "status":
        status = obj.get("status")
        obj = copy.deepcopy(old)
        if status is None:
            obj.pop("status", None)
        else:
            obj["status"] = status
    elif rt.has_status_subresource:
        obj.pop("status", None)
        if "status" in old:
            obj["status"] = copy.deepcopy(old["status"])
    return obj


def _refers_to(uids: set[str]) -> Callable[[Obj], bool]:
    return lambda ref: ref.get("uid") in uids


def _drop_nulls(value: Any) -> None:
    """``without_nulls`` in place (callers hold references into the object)."""
    if isinstance(value, dict):
        for key in [k for k, v in value.items() if v is None]:
            del value[key]
        for item in value.values():
            _drop_nulls(item)
    elif isinstance(value, list):
        for item in value:
            _drop_nulls(item)


def _scope(rt: ResourceType, subresource: str = "") -> str:
    if subresource == "status":
        return "status"
    return "main" if rt.has_status_subresource else "all"


def _spec_view(obj: Obj) -> Obj:
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}


def _established(crd: Obj) -> bool:
    conditions = (crd.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Established" and c.get("status") == "True" for c in conditions)


def _condition(kind: str, reason: str, message: str, now: str) -> Obj:
    return {
        "type": kind,
        "status": "True",
        "lastTransitionTime": now,
        "reason": reason,
        "message": message,
    }


def _random_suffix() -> str:
    alphabet = "bcdfghjklmnpqrstvwxz2456789"
    return "".join(secrets.choice(alphabet) for _ in range(5))


def _success(rt: ResourceType, obj: Obj) -> Obj:
    return errors.success(rt, obj["metadata"]["name"], obj["metadata"]["uid"])


def _propagation(options: Obj) -> str:
    policy = options.get("propagationPolicy")
    if policy is None:
        orphan = options.get("orphanDependents")
        return "Orphan" if orphan is True else "Background"
    if policy not in ("Foreground", "Background", "Orphan"):
        raise errors.invalid(
            "DeleteOptions",
            "meta.k8s.io",
            "",
            [
                (
                    "FieldValueNotSupported",
                    "propagationPolicy",
                    f'Unsupported value: "{policy}": supported values: "Foreground", '
                    '"Background", "Orphan", "nil"',
                )
            ],
            qualified="DeleteOptions.meta.k8s.io",
        )
    return str(policy)


def _check_preconditions(rt: ResourceType, name: str, obj: Obj, preconditions: Obj) -> None:
    meta = obj["metadata"]
    for field, label in (("uid", "UID"), ("resourceVersion", "ResourceVersion")):
        wanted = preconditions.get(field)
        if wanted and wanted != meta.get(field):
            raise errors.conflict(
                rt,
                name,
                f"Precondition failed: {label} in precondition: {wanted}, {label} in object meta: "
                f"{meta.get(field)}",
            )


__all__ = [
    "ApiError",
    "Cluster",
    "LogLine",
    "LogView",
    "WatchEvent",
    "WriteOptions",
    "now_rfc3339",
    "render_log",
    "rfc3339_nano",
]


def _dry_run(options: Obj) -> bool:
    value = options.get("dryRun")
    return value == "All" or (isinstance(value, list) and "All" in value)
