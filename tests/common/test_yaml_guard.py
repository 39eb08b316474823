"""The YAML guard shared by broker and agent (pure; issue #9 findings 4 and 6).

Covers: ordinary streams load as before (empty documents as None, anchors and merge keys,
timestamps kept as strings); billion laughs, self-referencing aliases, nesting past the depth
limit (directly or through an alias), and oversized scalars are refused naming the limit and the
document, however deep (no RecursionError); values their tag cannot hold (integers of more than
4,300 digits, ``!!timestamp 2020-13-45``, ``!!bool maybe``) and broken YAML are ``YamlError``,
never another exception; each limit is configurable.
"""

from __future__ import annotations

from typing import Any

import pytest

from brokkr.common import yaml_guard
from brokkr.common.yaml_guard import YamlLimits

LIMITS = YamlLimits()


def laughs(levels: int, width: int = 9) -> str:
    """The billion-laughs document: each level an anchored list of ``width`` aliases of the last."""
    lines = ["a0: &a0 [" + ",".join(["lol"] * width) + "]"]
    for level in range(1, levels + 1):
        lines.append(f"a{level}: &a{level} [" + ",".join([f"*a{level - 1}"] * width) + "]")
    return "\n".join(lines) + "\n"


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("a: 1\n---\n---\nb: [1, 2]\n", [{"a": 1}, None, {"b": [1, 2]}]),
        (
            "a: &x [1, 2]\nb: *x\nc: {<<: {q: 1}, r: 2}\n",
            [{"a": [1, 2], "b": [1, 2], "c": {"q": 1, "r": 2}}],
        ),
        ("d: 2024-01-02\ne: 2020-13-45\n", [{"d": "2024-01-02", "e": "2020-13-45"}]),
        ("", []),
        (nested(100), [eval(nested(100))]),  # noqa: S307 - a literal of our own making
        (laughs(2), [yaml_guard.load_all(laughs(2), YamlLimits(max_expansion=1000))[0]]),
    ],
)
def test_ordinary_yaml_loads(content: str, expected: list[Any]) -> None:
    assert yaml_guard.load_all(content, LIMITS) == expected


@pytest.mark.parametrize(
    ("content", "limit", "document"),
    [
        (laughs(9), "alias_expansion", 1),
        ("kind: x\n---\n" + laughs(5), "alias_expansion", 2),
        # 345 bytes that expanded to a 39 MB annotation in the trial.
        (laughs(6, width=10), "alias_expansion", 1),
        ("&a [*a]\n", "recursive_alias", 1),
        ("a: &a {b: *a}\n", "recursive_alias", 1),
        (nested(101), "depth", 1),
        ("".join("  " * i + "a:\n" for i in range(150)), "depth", 1),
        # Within the limit where written, too deep once the alias is expanded.
        ("a: &a " + nested(60) + "\nb: " + "[" * 50 + "*a" + "]" * 50 + "\n", "depth", 1),
        ("x: " + "y" * (1024 * 1024 + 1) + "\n", "scalar_size", 1),
    ],
)
def test_hostile_yaml_is_refused_naming_the_limit(content: str, limit: str, document: int) -> None:
    with pytest.raises(yaml_guard.YamlLimitExceeded) as refused:
        yaml_guard.load_all(content, LIMITS)
    assert (refused.value.limit, refused.value.document) == (limit, document)


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("a: " + "1" * 4301 + "\n", "4300 digits"),
        ("a: !!int " + "9" * 5000 + "\n", "4300 digits"),
        ("a: !!timestamp 2020-13-45\n", "month must be in 1..12"),
        ("a: !!timestamp yesterday\n", "does not match its tag"),
        ("a: !!bool maybe\n", "does not match its tag"),
        ("a: !!float x\n", "invalid value"),
        ("a: !!binary \u00ff\n", "base64"),
        ("? [a]\n: b\n", "unhashable key"),
        ("a: *nowhere\n", "undefined alias"),
        ("a: [unclosed\n", "line 2"),
        # libyaml's own bound, which it meets while scanning ahead for a key.
        (nested(100_000), "maximum nesting depth"),
        ("a: !!python/object:os.system ls\n", "could not determine a constructor"),
    ],
)
def test_bad_yaml_is_a_yaml_error_with_one_line(content: str, reason: str) -> None:
    with pytest.raises(yaml_guard.YamlError) as failed:
        yaml_guard.load_all(content, LIMITS)
    assert reason in failed.value.reason
    assert "\n" not in failed.value.reason
    assert failed.value.document == 1


def test_every_limit_is_configurable() -> None:
    assert yaml_guard.load_all(nested(200), YamlLimits(max_depth=200))
    with pytest.raises(yaml_guard.YamlLimitExceeded):
        yaml_guard.load_all(nested(6), YamlLimits(max_depth=5))
    with pytest.raises(yaml_guard.YamlLimitExceeded):
        yaml_guard.load_all("a: abcdef\n", YamlLimits(max_scalar_chars=5))
    # Three levels of nine expand 40 nodes to over 900: past the floor only when it is lowered.
    assert yaml_guard.load_all(laughs(3), LIMITS)
    assert yaml_guard.load_all(laughs(4), YamlLimits(max_expansion=10_000))
    with pytest.raises(yaml_guard.YamlLimitExceeded):
        yaml_guard.load_all(laughs(5), YamlLimits(max_expansion=10))
