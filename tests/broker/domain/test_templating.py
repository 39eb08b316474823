"""Template rendering: every row of the Tera feature table in docs/templates.md, printing, strict
variables, syntax errors with their position, and the sandbox (no environment, no Python
internals, fuel and output limits), each refused with its own 422 code."""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path
from typing import Any

import pytest

from brokkr.broker.domain import errors, templating

DOC = Path(__file__).parents[3] / "docs" / "templates.md"
LIMITS = templating.RenderLimits(fuel=1_000_000, max_output_bytes=2 * 1024 * 1024)


def _cell(text: str) -> str:
    code = text.strip()
    assert code.startswith("`") and code.endswith("`"), code
    return code[1:-1].replace("\\|", "|").replace("↵", "\n")


def _rows() -> list[tuple[str, str, dict[str, Any], str]]:
    lines = DOC.read_text(encoding="utf-8").split("## Supported Tera features", 1)[1].splitlines()
    rows = []
    for line in lines:
        if not line.startswith("| ") or line.startswith("| feature "):
            continue
        cells = re.split(r"(?<!\\)\|", line)[1:-1]
        feature, template, parameters, expected = cells
        rows.append(
            (feature.strip(), _cell(template), json.loads(_cell(parameters)), _cell(expected))
        )
    return rows


ROWS = _rows()


def _render(
    content: str, parameters: dict[str, Any], limits: templating.RenderLimits = LIMITS
) -> str:
    return templating.render(templating.compile(content), parameters, limits)


def test_the_feature_table_is_read() -> None:
    assert len(ROWS) >= 60


@pytest.mark.parametrize(
    ("template", "parameters", "expected"), [row[1:] for row in ROWS], ids=[row[0] for row in ROWS]
)
def test_tera_feature_renders_as_tera_documents(
    template: str, parameters: dict[str, Any], expected: str
) -> None:
    assert _render(template, parameters) == expected


def test_a_compiled_template_is_reused_across_threads_and_limits() -> None:
    compiled = templating.compile("{% for i in range(end=n) %}{{ i }}{% endfor %}")
    results: list[str] = []

    def work(n: int) -> None:
        results.append(templating.render(compiled, {"n": n}, LIMITS))

    threads = [threading.Thread(target=work, args=(n,)) for n in range(1, 9)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results, key=len) == ["".join(map(str, range(n))) for n in range(1, 9)]
    small = templating.RenderLimits(fuel=1000, max_output_bytes=1024)
    with pytest.raises(errors.TemplateFuelExhausted):
        templating.render(compiled, {"n": 50_000}, small)
    assert templating.render(compiled, {"n": 3}, LIMITS) == "012"


def test_an_undefined_variable_is_a_render_error_with_its_line() -> None:
    with pytest.raises(errors.TemplateRenderFailed) as caught:
        _render("kind: Service\nname: {{ nmae }}\n", {"name": "web"})
    assert caught.value.status == 422
    assert caught.value.message.startswith("Template rendering failed:")
    assert "nmae" in caught.value.message
    assert caught.value.details == {"line": 2}


def test_a_missing_key_is_a_render_error() -> None:
    with pytest.raises(errors.TemplateRenderFailed):
        _render("{{ app.nope }}", {"app": {"port": 1}})


@pytest.mark.parametrize(
    ("template", "parameters"),
    [
        ('{{ 1 | replace(from="a", to="b") }}', {}),
        ('{{ items | join(sep=",") }}', {"items": "not an array"}),
        ('{{ "a" | replace(to="b") }}', {}),
        ('{{ throw(message="replicas must be odd") }}', {}),
    ],
    ids=["wrong kind", "not an array", "missing argument", "throw"],
)
def test_filter_and_function_misuse_is_a_render_error(
    template: str, parameters: dict[str, Any]
) -> None:
    with pytest.raises(errors.TemplateRenderFailed) as caught:
        _render(template, parameters)
    assert caught.value.message.startswith("Template rendering failed:")


def test_throw_carries_its_message() -> None:
    with pytest.raises(errors.TemplateRenderFailed) as caught:
        _render('{{ throw(message="replicas must be odd") }}', {})
    assert caught.value.message == "Template rendering failed: replicas must be odd"


@pytest.mark.parametrize(
    ("content", "line", "column"),
    [
        ("{{ name", 1, 4),
        ("kind: Service\nspec:\n  {% if %}\n", 3, 9),
        ("{% for x in items %}\n{{ x }}\n", 2, 8),
        ("{{ name | }}", 1, 11),
    ],
    ids=["unclosed variable", "empty if", "unclosed for", "missing filter"],
)
def test_a_syntax_error_gives_line_and_column(content: str, line: int, column: int) -> None:
    with pytest.raises(errors.TemplateSyntaxInvalid) as caught:
        templating.compile(content)
    assert caught.value.status == 422
    assert caught.value.code == "invalid_template_syntax"
    assert caught.value.message.startswith("Invalid Tera syntax:")
    assert caught.value.details == {"field": "template_content", "line": line, "column": column}


def test_compiling_renders_nothing() -> None:
    # An undefined variable or a throw is only found when rendering (api-core §10.7).
    templating.compile('{{ undefined_variable }}{{ throw(message="x") }}')


# The sandbox (D9).


@pytest.mark.parametrize(
    "template",
    [
        '{{ get_env(name="HOME") }}',
        '{{ get_env(name="HOME", default="x") }}',
        "{{ now() }}",
        "{{ get_random(end=10) }}",
    ],
)
def test_no_function_reaches_the_environment_or_the_clock(template: str) -> None:
    with pytest.raises(errors.TemplateRenderFailed) as caught:
        _render(template, {})
    assert "unknown function" in caught.value.message


@pytest.mark.parametrize(
    "template",
    [
        "{{ name.__class__ }}",
        "{{ name.__class__.__mro__ }}",
        "{{ app.__class__.mro() }}",
        "{{ app.__init__.__globals__ }}",
        '{{ app["__class__"] }}',
        "{{ items.__class__.__subclasses__() }}",
        '{{ "{0.__class__}".format(app) }}',
        "{{ range.__globals__ }}",
        "{{ self }}",
    ],
)
def test_python_internals_are_unreachable(template: str) -> None:
    with pytest.raises(errors.TemplateRenderFailed):
        _render(template, {"name": "web", "app": {"port": 1}, "items": [1]})


@pytest.mark.parametrize(
    "template",
    [
        '{{ app.pop("port") }}',
        "{{ app.clear() }}",
        "{{ items.append(2) }}",
        "{{ items.pop() }}",
    ],
)
def test_a_template_cannot_change_its_parameters(template: str) -> None:
    parameters: dict[str, Any] = {"app": {"port": 1}, "items": [1]}
    with pytest.raises(errors.TemplateRenderFailed):
        _render(template, parameters)
    assert parameters == {"app": {"port": 1}, "items": [1]}


def test_parameters_must_be_json_values() -> None:
    with pytest.raises(errors.TemplateRenderFailed):
        _render("{{ x }}", {"x": object()})


@pytest.mark.parametrize(
    "template",
    [
        "{% for i in range(end=100000) %}{% for j in range(end=100000) %}{% endfor %}{% endfor %}",
        '{% set s = "x" * 1000 %}{% for i in range(end=100000) %}{{ s | length }}{% endfor %}',
        '{% set s = "x" * 100000000 %}{{ s | length }}',
    ],
    ids=["endless loop", "long loop", "huge string"],
)
def test_running_out_of_fuel_is_a_clear_422(template: str) -> None:
    limits = templating.RenderLimits(fuel=100_000, max_output_bytes=100 * 1024 * 1024)
    with pytest.raises(errors.TemplateFuelExhausted) as caught:
        _render(template, {}, limits)
    assert caught.value.status == 422
    assert caught.value.details == {"fuel": 100_000}
    # Refused, and the renderer is still fine: a render right after works.
    assert _render("{{ 1 + 1 }}", {}) == "2"


@pytest.mark.parametrize(
    "template",
    [
        # 100 MB through printed values: stopped by the finalizer long before.
        '{% for i in range(end=100000) %}{{ "x" * 1000 }}{% endfor %}',
        # ... and through the template's own text.
        "{% for i in range(end=100000) %}" + "y" * 1000 + "{% endfor %}",
        '{{ "x" * 3000000 }}',
    ],
    ids=["printed values", "template text", "one value"],
)
def test_a_100_mb_output_is_a_clear_422(template: str) -> None:
    with pytest.raises(errors.TemplateOutputTooLarge) as caught:
        _render(
            template, {}, templating.RenderLimits(fuel=10_000_000, max_output_bytes=2 * 1024 * 1024)
        )
    assert caught.value.status == 422
    assert caught.value.details == {"max_bytes": 2 * 1024 * 1024}
    assert _render("{{ 1 + 1 }}", {}) == "2"


def test_the_output_limit_counts_utf8_bytes() -> None:
    limits = templating.RenderLimits(fuel=100_000, max_output_bytes=1024)
    assert _render("{{ s }}", {"s": "é" * 512}, limits) == "é" * 512
    with pytest.raises(errors.TemplateOutputTooLarge):
        _render("{{ s }}é", {"s": "é" * 512}, limits)
