"""The one loader: every kind of bad file gives the right message; all problems at once."""

from __future__ import annotations

import pytest

from prompttracker.config.loader import load_project
from prompttracker.errors import ConfigError
from tests.project_factory import DATASET, PROMPT, write_project


def problems(tmp_path) -> str:
    with pytest.raises(ConfigError) as info:
        load_project(tmp_path)
    assert info.value.exit_code == 2
    return info.value.message


def test_valid_project_loads(tmp_path):
    project = load_project(write_project(tmp_path))
    assert list(project.prompts) == ["billing_support"]
    prompt = project.prompts["billing_support"]
    assert prompt.active_version.model_config_.model == "gpt-4o-mini"
    assert project.datasets["billing"].rows[0].max_turns == 3
    assert project.settings.concurrency == 8


def test_malformed_yaml_names_file_and_line(tmp_path):
    write_project(tmp_path, prompts={"broken": "name: x\nversions: [\n  - a: b\n"})
    message = problems(tmp_path)
    assert "prompts/broken.yaml: line" in message
    assert "invalid YAML" in message


@pytest.mark.parametrize(
    "text",
    ["a: [1, 2\nb: 3\n", "a: b: c\n", "- a\nb: c\n", "x: *nope\n", "\tkey: v\n", "a: {b\n"],
)
def test_libyaml_parses_and_reports_like_pyyaml(text, monkeypatch):
    import yaml

    from prompttracker.config import loader

    assert issubclass(loader.FAST_LOADER, yaml.CSafeLoader)  # the wheels ship libyaml
    valid = "rows:\n  - name: a\n    variables: {x: 1, y: [true, null, 2.5]}\n"
    assert loader.parse_yaml(valid) == yaml.load(valid, Loader=yaml.SafeLoader)

    def report(loader_class):
        monkeypatch.setattr(loader, "FAST_LOADER", loader_class)
        with pytest.raises(yaml.YAMLError) as info:
            loader.parse_yaml(text)
        mark = info.value.problem_mark
        return mark.line, mark.column, info.value.problem

    assert report(loader.FAST_LOADER) == report(loader.SAFE_LOADER)


def test_unknown_field_names_its_place(tmp_path):
    write_project(tmp_path, prompts={"p": PROMPT.replace("temperature: 0.3", "temprature: 0.3")})
    message = problems(tmp_path)
    assert (
        "prompts/p.yaml: line 12: versions[0].model_config.temprature: unknown field; did you "
        "mean 'temperature'?" in message
    )


def test_unknown_provider_api_lists_supported_pairs(tmp_path):
    write_project(tmp_path, prompts={"p": PROMPT.replace("api: chat_completions", "api: chat")})
    message = problems(tmp_path)
    assert "unknown provider/api pair 'openai'/'chat'" in message
    assert "openai/responses" in message and "anthropic/messages" in message


def test_assistants_api_requires_assistant_id(tmp_path):
    write_project(
        tmp_path, prompts={"p": PROMPT.replace("api: chat_completions", "api: assistants")}
    )
    message = problems(tmp_path)
    assert "versions[0].model_config" in message
    assert "needs 'assistant_id'" in message


def test_assistant_id_only_with_assistants(tmp_path):
    text = PROMPT.replace("model: gpt-4o-mini", "model: gpt-4o-mini\n      assistant_id: asst_1")
    write_project(tmp_path, prompts={"p": text})
    assert "'assistant_id' is only used with" in problems(tmp_path)


def test_missing_template_variable_names_file_row_and_variable(tmp_path):
    write_project(
        tmp_path, prompts={"p": PROMPT.replace("{{ company }}", "{{ company }} in {{ city }}")}
    )
    message = problems(tmp_path)
    assert "prompts/p.yaml" in message
    assert "missing template variable 'city'" in message
    assert "row 'angry double charge'" in message
    assert "datasets/billing.yaml" in message


def test_unknown_dataset_and_version(tmp_path):
    text = PROMPT.replace("dataset: billing", "dataset: nope\n    versions: [7]")
    write_project(tmp_path, prompts={"p": text})
    message = problems(tmp_path)
    assert "dataset 'nope' not found" in message
    assert "version 7 does not exist" in message


def test_two_active_versions(tmp_path):
    text = PROMPT.replace(
        "tests:",
        "  - version: 2\n    status: active\n    model_config: {provider: mock}\ntests:",
    )
    write_project(tmp_path, prompts={"p": text})
    assert "at most one version may be active" in problems(tmp_path)


def test_max_turns_bounds_and_conversational_rows_need_a_persona(tmp_path):
    dataset = DATASET.replace("max_turns: 3", "max_turns: 99").replace(
        "    interlocutor_simulation_prompt: You were charged twice. You want a refund.\n", ""
    )
    write_project(tmp_path, datasets={"billing": dataset})
    message = problems(tmp_path)
    assert "datasets/billing.yaml: line 5: rows[0].max_turns" in message
    assert "less than or equal to 50" in message


def test_conversational_row_without_persona(tmp_path):
    dataset = DATASET.replace(
        "    interlocutor_simulation_prompt: You were charged twice. You want a refund.\n", ""
    )
    write_project(tmp_path, datasets={"billing": dataset})
    assert "need 'interlocutor_simulation_prompt'" in problems(tmp_path)


def test_unknown_evaluator_type_and_config_key(tmp_path):
    text = PROMPT.replace("type: keyword", "type: keywords")
    text += "      - type: length\n        config: { max_len: 3 }\n"
    write_project(tmp_path, prompts={"p": text})
    message = problems(tmp_path)
    assert "unknown evaluator type 'keywords'" in message
    assert "unknown evaluator type 'keywords'; did you mean 'keyword'?" in message
    assert (
        "line 21: tests[0] (double charge is refunded).evaluators[1] (length): config.max_len: "
        "unknown config key; did you mean 'max_length'?"
    ) in message


def test_all_problems_of_all_files_at_once(tmp_path):
    write_project(
        tmp_path,
        prompts={"a": "name: [", "b": PROMPT.replace("provider: openai", "provider: nope")},
        datasets={"billing": DATASET, "bad": "mode: sometimes\nrows: []\n"},
    )
    message = problems(tmp_path)
    assert "prompts/a.yaml" in message
    assert "prompts/b.yaml" in message
    assert "datasets/bad.yaml: line 1: mode" in message
    assert "datasets/bad.yaml: line 2: rows" in message


def test_empty_file_and_wrong_top_level(tmp_path):
    write_project(tmp_path, prompts={"empty": "", "list": "- a\n- b\n"})
    message = problems(tmp_path)
    assert "prompts/empty.yaml: expected a mapping at the top level, found empty" in message
    assert "prompts/list.yaml: expected a mapping at the top level, found a list" in message


def test_bad_settings_file(tmp_path):
    write_project(tmp_path, settings="concurrency: 0\n")
    assert "prompttracker.yaml: line 1: concurrency" in problems(tmp_path)


def test_missing_prompts_folder(tmp_path):
    assert "prompts/: folder not found" in problems(tmp_path)


def test_rows_get_default_names(tmp_path):
    dataset = "mode: single_turn\nrows:\n  - variables: {q: a}\n  - variables: {q: b}\n"
    write_project(tmp_path, prompts={}, datasets={"d": dataset})
    assert [r.name for r in load_project(tmp_path).datasets["d"].rows] == ["row-1", "row-2"]


def test_single_turn_row_needs_a_user_message(tmp_path):
    dataset = (
        "mode: single_turn\nrows:\n"
        "  - name: blank\n    variables: {company: A, opening_message: ' '}\n"
    )
    write_project(tmp_path, datasets={"billing": dataset})
    message = problems(tmp_path)
    assert "user_prompt: renders empty" in message
    assert "row 'blank'" in message


@pytest.mark.parametrize(
    ("text", "expected", "line"),
    [
        # a duplicate key at any level: the last one would silently win
        ("version: 1\nversion: 2\n", "duplicate key 'version' (first on line 1)", 2),
        ("rows:\n  - variables: {a: 1, b: 2, a: 3}\n", "duplicate key 'a' (first on line 2)", 2),
        ("x: !!binary aGVsbG8=\n", "a binary value (!!binary)", 1),
    ],
)
def test_duplicate_keys_and_binary_values_are_refused_with_their_line(text, expected, line):
    import yaml

    from prompttracker.config import loader

    for loader_class in (loader.FAST_LOADER, loader.SAFE_LOADER):
        with pytest.raises(yaml.YAMLError) as info:
            yaml.load(text, Loader=loader_class)
        assert expected in info.value.problem
        assert info.value.problem_mark.line + 1 == line


def test_alias_bombs_and_deep_nesting_are_refused_not_expanded():
    from prompttracker.config import loader

    lol = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):  # 10 ** 9 values once expanded
        lol.append(f"{chr(97 + i)}: &{chr(97 + i)} [" + ", ".join([f"*{chr(96 + i)}"] * 10) + "]")
    with pytest.raises(loader.YamlTooBig, match="aliases expand past 1,000,000 values"):
        loader.parse_yaml("\n".join(lol) + "\n")
    with pytest.raises(loader.YamlTooBig, match="nested too deeply"):
        loader.parse_yaml("x: " + "[" * 5000 + "]" * 5000 + "\n")
    with pytest.raises(loader.YamlTooBig, match="nested too deeply"):
        loader.parse_yaml("x: " + "[" * 150 + "]" * 150 + "\n")
    assert loader.parse_yaml("x: " + "[" * 50 + "]" * 50 + "\n")  # deep, but not absurdly
