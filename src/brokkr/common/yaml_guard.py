"""Load untrusted YAML within limits on nesting depth, scalar size and alias expansion. Pure.

The broker (before it stores a deployment object) and the agent (before it stamps one) load
through ``load_all``: a document is composed from the parser's events in one flat loop (no
recursion, so no nesting can exhaust the stack), measured as if every alias were expanded, and
rejected before any Python object is built from it. Only a document within the limits is
constructed, with aliases shared rather than copied. Timestamps stay strings: objects travel as
JSON, as with kubectl.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any

import msgspec
import yaml
from yaml import events, nodes

# libyaml's parser when PyYAML was built with it: the pure-Python one dominated the agent's
# client-side cost of applying a big stack (bench/agent_apply.py).
if TYPE_CHECKING:
    _SafeLoader = yaml.SafeLoader
else:
    _SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

# Below these, expansion is never a problem whatever its ratio: a small document that reuses one
# anchor a few times legitimately expands more than tenfold, and stays small.
EXPANSION_FLOOR_NODES = 10_000
EXPANSION_FLOOR_CHARS = 256 * 1024


class YamlLimits(msgspec.Struct, kw_only=True, frozen=True):
    # Kubernetes objects nest a few dozen levels at most; deeper is hostile (and overflowed
    # the recursive constructors at ~500 levels).
    max_depth: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 100
    # ConfigMaps and Secrets hold at most 1 MiB; one scalar larger than that is never applied.
    max_scalar_chars: Annotated[int, msgspec.Meta(ge=1)] = 1024 * 1024
    # Billion laughs: nodes (and characters) after alias expansion, as a multiple of the source.
    max_expansion: Annotated[int, msgspec.Meta(ge=1)] = 10


class YamlRejected(ValueError):
    """Why ``document`` (counted from 1, empty documents included) cannot be loaded."""

    def __init__(self, reason: str, *, document: int) -> None:
        self.reason = reason
        self.document = document
        super().__init__(f"document {document}: {reason}")


class YamlError(YamlRejected):
    """The content is not YAML, or one of its values cannot be built (``!!int x``)."""


class YamlLimitExceeded(YamlRejected):
    """A document exceeds ``limit``: "depth", "scalar_size", "alias_expansion" or
    "recursive_alias"."""

    def __init__(self, limit: str, reason: str, *, document: int) -> None:
        self.limit = limit
        super().__init__(reason, document=document)


class _Loader(_SafeLoader):
    """Safe loader that keeps timestamps as strings."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}

# Constructors raise these on values their tag cannot hold (`!!int 1x`, an integer of more than
# 4,300 digits, `!!timestamp 2020-13-45`, `!!bool maybe`): the content's fault, not a bug.
_VALUE_ERRORS = (yaml.YAMLError, ValueError, OverflowError, TypeError, KeyError, AttributeError)


@dataclass
class _Size:
    """A node's size with every alias below it expanded."""

    nodes: int = 1
    chars: int = 0
    height: int = 0


@dataclass
class _Open:
    node: nodes.CollectionNode
    anchor: str | None
    size: _Size = field(default_factory=_Size)
    key: nodes.Node | None = None


@dataclass
class _Document:
    number: int
    limits: YamlLimits
    anchors: dict[str, tuple[nodes.Node, _Size | None]] = field(default_factory=dict)
    open: list[_Open] = field(default_factory=list)
    source_nodes: int = 0
    source_chars: int = 0
    root: nodes.Node | None = None
    root_size: _Size | None = None

    def exceeded(self, limit: str, reason: str) -> YamlLimitExceeded:
        return YamlLimitExceeded(limit, reason, document=self.number)


def load_all(content: str, limits: YamlLimits) -> list[Any]:
    """The documents of a YAML stream, in order, empty ones as None.

    Raises ``YamlLimitExceeded`` for a document over ``limits`` and ``YamlError`` for one that
    is not valid YAML.
    """
    loader = _Loader(content)
    documents: list[Any] = []
    try:
        while True:
            number = len(documents) + 1
            try:
                if loader.check_event(events.StreamStartEvent):
                    _next(loader)
                if loader.check_event(events.StreamEndEvent):
                    return documents
                node = _compose(loader, _Document(number=number, limits=limits))
                documents.append(loader.construct_document(node))
            except YamlRejected:
                raise
            except _VALUE_ERRORS as exc:
                raise YamlError(_reason(exc), document=number) from exc
    finally:
        loader.dispose()


def _compose(loader: _Loader, doc: _Document) -> nodes.Node:
    """The document's node graph, built from events without recursion, checked on the way."""
    _next(loader)  # DocumentStartEvent
    while doc.root is None:
        event = _next(loader)
        if isinstance(event, events.CollectionStartEvent):
            _open(loader, doc, event)
            continue
        if isinstance(event, events.CollectionEndEvent):
            node, size = _close(doc, event)
        elif isinstance(event, events.AliasEvent):
            node, size = _alias(doc, event)
        else:
            node, size = _scalar(loader, doc, event)
        _attach(doc, node, size)
    _next(loader)  # DocumentEndEvent
    _check_expansion(doc)
    return doc.root


def _open(loader: _Loader, doc: _Document, event: Any) -> None:
    if len(doc.open) + 1 > doc.limits.max_depth:
        raise doc.exceeded("depth", f"nested deeper than {doc.limits.max_depth} levels")
    kind: type[nodes.CollectionNode]
    kind = nodes.MappingNode if isinstance(event, events.MappingStartEvent) else nodes.SequenceNode
    tag = event.tag
    if tag is None or tag == "!":
        tag = _resolve(loader, kind, None, event.implicit)
    node = kind(tag, [], event.start_mark, None, flow_style=event.flow_style)
    doc.source_nodes += 1
    if event.anchor is not None:
        # Open while its own content is read: an alias to it from inside would be a cycle.
        doc.anchors[event.anchor] = (node, None)
    doc.open.append(_Open(node=node, anchor=event.anchor))


def _close(doc: _Document, event: Any) -> tuple[nodes.Node, _Size]:
    closed = doc.open.pop()
    closed.node.end_mark = event.end_mark
    closed.size.height += 1
    if closed.anchor is not None:
        doc.anchors[closed.anchor] = (closed.node, closed.size)
    return closed.node, closed.size


def _alias(doc: _Document, event: Any) -> tuple[nodes.Node, _Size]:
    if event.anchor not in doc.anchors:
        raise yaml.composer.ComposerError(
            None, None, f"found undefined alias {event.anchor!r}", event.start_mark
        )
    node, size = doc.anchors[event.anchor]
    if size is None:
        raise doc.exceeded("recursive_alias", f"alias *{event.anchor} refers to itself")
    doc.source_nodes += 1
    return node, size


def _scalar(loader: _Loader, doc: _Document, event: Any) -> tuple[nodes.Node, _Size]:
    value: str = event.value
    if len(value) > doc.limits.max_scalar_chars:
        raise doc.exceeded(
            "scalar_size", f"a scalar is longer than {doc.limits.max_scalar_chars} characters"
        )
    tag = event.tag
    if tag is None or tag == "!":
        tag = _resolve(loader, nodes.ScalarNode, value, event.implicit)
    node = nodes.ScalarNode(tag, value, event.start_mark, event.end_mark, style=event.style)
    doc.source_nodes += 1
    doc.source_chars += len(value)
    if event.anchor is not None:
        doc.anchors[event.anchor] = (node, _Size(chars=len(value)))
    return node, _Size(chars=len(value))


def _attach(doc: _Document, node: nodes.Node, size: _Size) -> None:
    if not doc.open:
        doc.root, doc.root_size = node, size
        return
    parent = doc.open[-1]
    if len(doc.open) + size.height > doc.limits.max_depth:
        raise doc.exceeded("depth", f"nested deeper than {doc.limits.max_depth} levels")
    parent.size.nodes += size.nodes
    parent.size.chars += size.chars
    parent.size.height = max(parent.size.height, size.height)
    if isinstance(parent.node, nodes.SequenceNode):
        parent.node.value.append(node)
    elif parent.key is None:
        parent.key = node
    else:
        parent.node.value.append((parent.key, node))
        parent.key = None


def _check_expansion(doc: _Document) -> None:
    size, ratio = doc.root_size or _Size(), doc.limits.max_expansion
    if size.nodes > max(ratio * doc.source_nodes, EXPANSION_FLOOR_NODES) or size.chars > max(
        ratio * doc.source_chars, EXPANSION_FLOOR_CHARS
    ):
        raise doc.exceeded(
            "alias_expansion",
            f"aliases expand {doc.source_nodes} nodes and {doc.source_chars} characters to "
            f"{size.nodes} and {size.chars} (more than {ratio} times the source)",
        )


def _next(loader: _Loader) -> Any:
    return loader.get_event()  # type: ignore[no-untyped-call]


def _resolve(loader: _Loader, kind: type[nodes.Node], value: str | None, implicit: Any) -> str:
    tag: str = loader.resolve(kind, value, implicit)  # type: ignore[no-untyped-call]
    return tag


def _reason(exc: BaseException) -> str:
    """One line: PyYAML's own messages span several, the first often only "while parsing"."""
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem:
        mark = exc.problem_mark
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        return f"{exc.problem}{where}"
    text = str(exc).strip()
    if isinstance(exc, ValueError | OverflowError) and text:
        return f"invalid value: {text.splitlines()[0]}"
    return "a value does not match its tag"
