import pytest

from prompttracker import templating
from prompttracker.templating import TemplateError, check_syntax, render


def test_renders_variables_filters_and_tags():
    source = (
        "Hi {{ name | capitalize }}.{% if vip %} VIP{% endif %}"
        "{% for o in orders %} #{{ o }}{% endfor %}"
    )
    assert render(source, {"name": "ada", "vip": True, "orders": [1, 2]}) == "Hi Ada. VIP #1 #2"


def test_missing_variable_is_an_error_naming_it():
    with pytest.raises(TemplateError) as info:
        render("You work for {{ company }}.", {"name": "x"})
    assert info.value.variable == "company"
    assert "company" in str(info.value)


def test_missing_variable_is_never_an_empty_string():
    with pytest.raises(TemplateError):
        render("{{ a }}{{ b }}", {"a": "x"})


def test_syntax_error_is_reported():
    with pytest.raises(TemplateError, match="invalid Liquid"):
        check_syntax("{{ unclosed ")


def test_plain_text_passes_through():
    assert render("no variables here", {}) == "no variables here"


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ("{% for i in (1..100000000) %}x{% endfor %}", "its loops run more than 100,000 times"),
        (
            "{% for a in (1..1000) %}{% for b in (1..1000) %}x{% endfor %}{% endfor %}",
            "its loops run more than 100,000 times",
        ),
        (
            "{% assign s = 'xx' %}{% for i in (1..64) %}{% capture s %}{{ s }}{{ s }}"
            "{% endcapture %}{% endfor %}{{ s }}",
            "it makes more than 4,000,000 characters",
        ),
        (
            "{% assign s = 'x' %}{% for i in (1..20) %}{% assign s = s | append: s %}{% endfor %}"
            "{{ s | split: '' | join: s }}",
            "the result of `join` would have more than 4,000,000 characters",
        ),
        ("{{ (1..1000000000000) | reverse | size }}", "the input of `reverse` has more than"),
        (
            "{% assign x = 99999999999 %}{% for i in (1..100) %}{% assign x = x | times: x %}"
            "{% endfor %}{{ x }}",
            "the result of `times` is a number of more than 4,096 bits",
        ),
    ],
    ids=["loop", "nested loops", "capture doubling", "split join", "huge range", "squaring"],
)
def test_a_template_too_costly_to_render_is_refused_quickly(source: str, reason: str) -> None:
    with pytest.raises(TemplateError) as info:
        render(source, {})
    assert info.value.kind == "limit"
    assert f"the template is too costly to render ({reason}" in str(info.value)


def test_rendering_stops_at_its_time_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(templating, "RENDER_SECONDS", 0.05)
    slow = "{% for i in (1..100000) %}{{ text | replace: 'a', 'b' | size }}{% endfor %}"
    with pytest.raises(TemplateError, match=r"rendering took longer than 0\.05 s"):
        render(slow, {"text": "a" * 200_000})


def test_templates_under_the_limits_render_whole() -> None:
    big = "y" * 3_000_000  # a long document inlined in a prompt is fine
    assert render("{{ doc }}!", {"doc": big}) == big + "!"
    loops = "{% for i in (1..300) %}{% for j in (1..300) %}.{% endfor %}{% endfor %}"
    assert render(loops, {}) == "." * 90_000


def test_a_syntax_error_names_its_line_in_the_template_and_the_raw_tag() -> None:
    with pytest.raises(TemplateError) as info:
        check_syntax("Hello.\nAnswer as JSON:\n{% bogus %}")
    assert info.value.kind == "syntax"
    assert "invalid Liquid template (line 3 of the template): unexpected tag 'bogus'" in str(
        info.value
    )
    assert "{% raw %}" in str(info.value)
