import pytest

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
