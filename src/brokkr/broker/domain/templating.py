"""Template rendering: minijinja, made to read and print like Tera (D9, D16). Pure.

Templates see only their parameters, frozen into read-only JSON-like values; no function reaches
the environment, files, the network, the clock or randomness, and every render is bounded by
fuel (steps) and by output size. ``docs/templates.md`` lists the Tera features that render
exactly as Tera documents them.
"""

from __future__ import annotations

import contextvars
import datetime
import json
import math
import re
import threading
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from types import MappingProxyType
from typing import Any, Final, final

import minijinja
import msgspec

from brokkr.broker.domain import errors

_NAME: Final = "template"
# Tera lists at most this many numbers from range(); minijinja refuses larger ranges too.
_MAX_RANGE: Final = 100_000

# Tera spells two things differently from minijinja; rewriting them keeps every newline, so the
# line numbers of errors still point into the source the user wrote.
# `default(value=x)` → minijinja's built-in `default(x)`, which alone still sees an undefined
# value (a Python filter would get None) and so substitutes only when it is undefined, as Tera.
_DEFAULT_VALUE = re.compile(r"(\|\s*default\s*\(\s*)value\s*=(?!=)")
# `{% for k, v in map %}` → `... in (map) | items`: minijinja iterates a map's keys only.
_FOR_PAIRS = re.compile(r"(\{%-?\s*for\s+\w+\s*,\s*\w+\s+in\s+)(.+?)(\s*-?%\})", re.DOTALL)


class RenderLimits(msgspec.Struct, frozen=True, kw_only=True):
    fuel: int
    max_output_bytes: int


@final
class Compiled:
    """A template that compiled; reusable by any thread, with any limits."""

    __slots__ = ("_environments", "_lock", "_source")

    def __init__(self, source: str) -> None:
        self._source = source
        # Fuel is a property of a minijinja environment, so each fuel in use gets its own.
        self._environments: dict[int, minijinja.Environment] = {}
        self._lock = threading.Lock()

    def environment(self, fuel: int) -> minijinja.Environment:
        environment = self._environments.get(fuel)
        if environment is None:
            with self._lock:
                environment = self._environments.get(fuel)
                if environment is None:
                    environment = _environment(fuel)
                    environment.add_template(_NAME, self._source)
                    self._environments[fuel] = environment
        return environment


def compile(content: str) -> Compiled:  # noqa: A001 - the shared interface names it so
    """Parse ``content`` as a Tera template (nothing is rendered); raise
    ``TemplateSyntaxInvalid`` with the 1-based line and column of the first error."""
    source = _FOR_PAIRS.sub(r"\1(\2) | items\3", _DEFAULT_VALUE.sub(r"\1", content))
    compiled = Compiled(source)
    try:
        compiled.environment(0)
    except minijinja.TemplateError as exc:
        line, column = _position(exc, source)
        raise errors.TemplateSyntaxInvalid(_problem(exc), line=line, column=column) from exc
    return compiled


def render(template: Compiled, parameters: Mapping[str, Any], limits: RenderLimits) -> str:
    """Render with the top-level keys of ``parameters`` as variables.

    Raises ``TemplateRenderFailed``, ``TemplateFuelExhausted`` or ``TemplateOutputTooLarge``.
    """
    environment = template.environment(limits.fuel)
    context = {str(key): _freeze(value) for key, value in parameters.items()}
    budget = _Budget(limits.max_output_bytes)
    token = _BUDGET.set(budget)
    try:
        output = environment.render_template(_NAME, **context)
    except _OutputTooLarge as exc:
        raise errors.TemplateOutputTooLarge(limits.max_output_bytes) from exc
    except minijinja.TemplateError as exc:
        if "out of fuel" in str(exc):
            raise errors.TemplateFuelExhausted(limits.fuel) from exc
        raise errors.TemplateRenderFailed(_problem(exc), line=exc.line) from exc
    except (ValueError, TypeError, LookupError, AttributeError, ArithmeticError) as exc:
        # Raised by the filters and functions below (a value of the wrong kind, a missing
        # argument, throw()) or by a method a frozen value lacks (`map.pop()`): minijinja
        # passes Python exceptions through unchanged.
        raise errors.TemplateRenderFailed(str(exc), line=None) from exc
    finally:
        _BUDGET.reset(token)
    if utf8_size_over(output, limits.max_output_bytes):
        raise errors.TemplateOutputTooLarge(limits.max_output_bytes)
    return output


class _Budget:
    """Output characters left for one render's printed values; text of the template itself
    costs fuel by its length and the whole output is measured once the render ends."""

    __slots__ = ("left",)

    def __init__(self, limit: int) -> None:
        self.left = limit


class _OutputTooLarge(Exception):
    """Raised by the finalizer to stop a render as soon as its printed values pass the limit."""


_BUDGET: contextvars.ContextVar[_Budget] = contextvars.ContextVar("template_output_budget")


def utf8_size_over(text: str, limit: int) -> bool:
    """Is ``text`` longer than ``limit`` bytes in UTF-8 (lone surrogates counted as 3)?"""
    # Cheap first: UTF-8 takes 1 to 4 bytes per character.
    if len(text) * 4 <= limit:
        return False
    return len(text) > limit or len(text.encode("utf-8", "surrogatepass")) > limit


def _position(exc: minijinja.TemplateError, source: str) -> tuple[int, int]:
    line = exc.line or 1
    span = getattr(exc, "range", None)
    if span is None:
        return line, 1
    # minijinja reports byte offsets into the source.
    before = source.encode("utf-8", "surrogatepass")[: span[0]].decode("utf-8", "replace")
    return line, len(before) - (before.rfind("\n") + 1) + 1


def _problem(exc: minijinja.TemplateError) -> str:
    # The first line only: the rest is minijinja's debug dump of the source and the context.
    return str(exc.message).splitlines()[0].replace(f" (in {_NAME}:", " (at line ")


def _freeze(value: Any) -> Any:
    """JSON-like data only, read-only all the way down, maps in key order (as Tera's serde maps):
    a template can neither change the parameters nor reach a Python object's methods."""
    if isinstance(value, Mapping):
        return MappingProxyType({str(k): _freeze(value[k]) for k in sorted(value, key=str)})
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(item) for item in value)
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    raise errors.TemplateRenderFailed(
        f"parameters may hold only JSON values, not {type(value).__name__}", line=None
    )


# Printing, as Tera prints: null is empty, booleans lower case, numbers as Rust prints them,
# arrays as `[a, b]` of printed elements and objects as `[object]`.


def _print(value: Any) -> str:
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _print_float(value)
    if isinstance(value, Mapping):
        return "[object]"
    if isinstance(value, Iterable):
        return "[" + ", ".join(_print(item) for item in value) + "]"
    return str(value)


def _print_float(value: float) -> str:
    if not math.isfinite(value):
        return repr(value)
    if value.is_integer() and abs(value) < 1e16:
        return str(int(value))
    # Rust never prints an exponent: 1e-07 is 0.0000001.
    return format(Decimal(repr(value)), "f")


def _finalize(value: Any) -> str:
    text = _print(value)
    budget = _BUDGET.get(None)
    if budget is not None:
        budget.left -= len(text)
        if budget.left < 0:
            raise _OutputTooLarge
    return text


# Tera's filters that minijinja lacks or spells differently; arguments are named, as in Tera.


def _string(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"filter {name} expects a string, got {_kind(value)}")
    return value


def _kind(value: Any) -> str:
    if value is None:
        return "null (or an undefined value)"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, (tuple, list)):
        return "an array"
    return type(value).__name__


def _array(name: str, value: Any) -> tuple[Any, ...]:
    if isinstance(value, str) or not isinstance(value, (tuple, list)):
        raise ValueError(f"filter {name} expects an array, got {_kind(value)}")
    return tuple(value)


def _number(name: str, value: Any) -> float | int:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"filter {name} expects a number, got {_kind(value)}")
    return value


def _replace(value: Any, *, to: str, **kwargs: str) -> str:
    # `from` is a Python keyword, so it arrives through **kwargs.
    return _string("replace", value).replace(_string("replace", kwargs["from"]), to)


def _join(value: Any, *, sep: str = "") -> str:
    return sep.join(_print(item) for item in _array("join", value))


def _split(value: Any, *, pat: str) -> tuple[str, ...]:
    return tuple(_string("split", value).split(pat))


def _truncate(value: Any, *, length: int = 255, end: str = "…") -> str:
    text = _string("truncate", value)
    return text if len(text) <= length else text[:length] + end


def _round(value: Any, *, method: str = "common", precision: int = 0) -> float:
    number = _number("round", value) * 10.0**precision
    rounded: float
    if method == "ceil":
        rounded = math.ceil(number)
    elif method == "floor":
        rounded = math.floor(number)
    elif method == "common":
        # Half away from zero, as Rust's f64::round (Python's round() goes to even).
        rounded = math.copysign(math.floor(abs(number) + 0.5), number)
    else:
        raise ValueError(f"filter round: unknown method {method!r}")
    return rounded / 10.0**precision


def _date(value: Any, *, format: str = "%Y-%m-%d", timezone: str | None = None) -> str:  # noqa: A002
    if timezone is not None:
        raise ValueError("filter date: the timezone argument is not supported")
    if isinstance(value, str):
        moment = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    else:
        moment = datetime.datetime.fromtimestamp(_number("date", value), datetime.UTC)
    return moment.strftime(format)


def _slugify(value: Any) -> str:
    ascii_text = unicodedata.normalize("NFKD", _string("slugify", value)).encode("ascii", "ignore")
    words = re.split(r"[^a-z0-9]+", ascii_text.decode("ascii").lower())
    return "-".join(word for word in words if word)


def _trim_start_matches(value: Any, *, pat: str) -> str:
    text = _string("trim_start_matches", value)
    while pat and text.startswith(pat):
        text = text[len(pat) :]
    return text


def _trim_end_matches(value: Any, *, pat: str) -> str:
    text = _string("trim_end_matches", value)
    while pat and text.endswith(pat):
        text = text[: -len(pat)]
    return text


def _json_encode(value: Any, *, pretty: bool = False) -> str:
    return json.dumps(
        _thaw(value),
        ensure_ascii=False,
        sort_keys=True,
        indent=2 if pretty else None,
        separators=(",", ": ") if pretty else (",", ":"),
    )


def _thaw(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(key): _thaw(item) for key, item in value.items()}
    if isinstance(value, (tuple, list)):
        return [_thaw(item) for item in value]
    return value


def _first(value: Any) -> Any:
    items = _array("first", value)
    return items[0] if items else ""


def _last(value: Any) -> Any:
    items = _array("last", value)
    return items[-1] if items else ""


def _nth(value: Any, *, n: int) -> Any:
    items = _array("nth", value)
    return items[n] if 0 <= n < len(items) else ""


def _get(value: Any, *, key: str, **kwargs: Any) -> Any:
    if not isinstance(value, Mapping):
        raise ValueError(f"filter get expects an object, got {_kind(value)}")
    if key in value:
        return value[key]
    if "default" in kwargs:
        return kwargs["default"]
    raise ValueError(f"filter get: the object has no key {key!r}")


def _concat(value: Any, **kwargs: Any) -> tuple[Any, ...]:
    extra = kwargs["with"]
    return _array("concat", value) + (
        tuple(extra) if isinstance(extra, (tuple, list)) else (extra,)
    )


def _slice(value: Any, *, start: int = 0, end: int | None = None) -> tuple[Any, ...]:
    return _array("slice", value)[start:end]


def _indent(value: Any, *, prefix: str = "    ", first: bool = False, blank: bool = False) -> str:
    lines = _string("indent", value).split("\n")
    indented = [
        line if (index == 0 and not first) or (not blank and not line.strip()) else prefix + line
        for index, line in enumerate(lines)
    ]
    return "\n".join(indented)


def _wordcount(value: Any) -> int:
    return len(_string("wordcount", value).split())


def _pluralize(value: Any, *, singular: str = "", plural: str = "s") -> str:
    return singular if abs(_number("pluralize", value)) == 1 else plural


def _addslashes(value: Any) -> str:
    text = _string("addslashes", value)
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("'", "\\'")


def _int(value: Any, *, default: int = 0, base: int = 10) -> int:
    # A bool is an int here too: true is 1.
    if isinstance(value, (int, float)):
        return int(value)
    try:
        return int(_string("int", value), base)
    except ValueError:
        return default


def _float(value: Any, *, default: float = 0.0) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    try:
        return float(_string("float", value))
    except ValueError:
        return default


_FILTERS: Final[dict[str, Callable[..., Any]]] = {
    "replace": _replace,
    "join": _join,
    "split": _split,
    "truncate": _truncate,
    "round": _round,
    "date": _date,
    "slugify": _slugify,
    "trim_start": lambda value: _string("trim_start", value).lstrip(),
    "trim_end": lambda value: _string("trim_end", value).rstrip(),
    "trim_start_matches": _trim_start_matches,
    "trim_end_matches": _trim_end_matches,
    "json_encode": _json_encode,
    "as_str": _print,
    "first": _first,
    "last": _last,
    "nth": _nth,
    "get": _get,
    "concat": _concat,
    "slice": _slice,
    "indent": _indent,
    "wordcount": _wordcount,
    "pluralize": _pluralize,
    "addslashes": _addslashes,
    "int": _int,
    "float": _float,
}


def _containing(value: Any, needle: Any) -> bool:
    if isinstance(value, (str, Mapping, tuple, list)):
        return needle in value
    raise ValueError(f"test containing expects a string, an array or an object, got {_kind(value)}")


_TESTS: Final[dict[str, Callable[..., bool]]] = {
    "starting_with": lambda value, prefix: isinstance(value, str) and value.startswith(prefix),
    "ending_with": lambda value, suffix: isinstance(value, str) and value.endswith(suffix),
    "containing": _containing,
    "object": lambda value: isinstance(value, Mapping),
}


def _range(*, end: int, start: int = 0, step_by: int = 1) -> tuple[int, ...]:
    if step_by <= 0:
        raise ValueError("function range: step_by must be positive")
    if (end - start) // step_by > _MAX_RANGE:
        raise ValueError(f"function range: more than {_MAX_RANGE} numbers")
    return tuple(range(start, end, step_by))


def _throw(*, message: str) -> None:
    raise ValueError(message)


def _environment(fuel: int) -> minijinja.Environment:
    # No autoescape: the output is YAML. The final newline is kept, as Tera keeps it.
    environment: minijinja.Environment = minijinja.Environment(
        keep_trailing_newline=True,
        finalizer=_finalize,
        filters=_FILTERS,
        tests=_TESTS,
        # Tera's range takes named arguments; get_env, now and get_random are never defined (D9).
        globals={"range": _range, "throw": _throw},
    )
    # Semi-strict, as Tera: printing or walking into an undefined variable is an error, but
    # `default`, `is defined` and `if` may look at one (falsy). The stubs list older modes only.
    environment.undefined_behavior = "semi_strict"  # type: ignore[assignment]
    environment.auto_escape_callback = lambda _name: None
    if fuel:
        environment.fuel = fuel
    return environment
