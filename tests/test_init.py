"""`pt init`: a scaffolded project validates, passes offline, and nothing is ever overwritten."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import yaml
from jsonschema import Draft202012Validator
from typer.testing import CliRunner

from prompttracker.cli import app
from prompttracker.scaffold import project_files

runner = CliRunner()
JUNIT = "reports/prompttracker.xml"
YAML_FILES = {
    "prompttracker.yaml": "settings",
    "prompts/support_assistant.yaml": "prompt",
    "datasets/support_conversations.yaml": "dataset",
}


def pt(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


def test_init_validates_and_passes_under_mock(tmp_path):
    result = pt("init")
    assert result.exit_code == 0, result.output
    for name in [*project_files(), ".gitignore"]:
        assert (tmp_path / name).is_file(), name
        assert name in result.output
    assert "pt validate" in result.output and "pt run-tests --mock" in result.output
    assert "OPENAI_API_KEY" in result.output

    result = pt("validate")
    assert result.exit_code == 0, result.output
    assert "1 prompt file(s), 1 dataset(s), 1 test(s): 6 test run(s) planned" in result.output

    result = pt("run-tests", "--mock", "--junit-xml", JUNIT)
    assert result.exit_code == 0, result.output
    assert "6 test runs: 6 passed, 0 failed, 0 error" in result.output
    suite = ET.parse(tmp_path / JUNIT).getroot()
    counts = {key: int(suite.get(key, 0)) for key in ("tests", "failures", "errors", "skipped")}
    assert counts == {"tests": 6, "failures": 0, "errors": 0, "skipped": 0}


def test_yaml_files_point_at_the_schemas_they_satisfy(tmp_path):
    assert pt("init").exit_code == 0
    for name, kind in YAML_FILES.items():
        path = tmp_path / name
        first = path.read_text().splitlines()[0]
        prefix = "# yaml-language-server: $schema="
        assert first.startswith(prefix), name
        schema_path = (path.parent / first.removeprefix(prefix)).resolve()
        assert schema_path == (tmp_path / "schemas" / f"{kind}.schema.json").resolve()
        schema = json.loads(schema_path.read_text())
        errors = list(Draft202012Validator(schema).iter_errors(yaml.safe_load(path.read_text())))
        assert errors == [], (name, [e.message for e in errors])


def test_workflow_validates_runs_offline_and_uploads_the_report(tmp_path):
    assert pt("init").exit_code == 0
    workflow = yaml.safe_load((tmp_path / ".github/workflows/prompttracker.yml").read_text())
    triggers = workflow[True]  # PyYAML (YAML 1.1) reads the key `on` as true; GitHub does not
    assert "pull_request" in triggers and "push" in triggers
    steps = workflow["jobs"]["prompts"]["steps"]
    uses = [step.get("uses", "").split("@")[0] for step in steps]
    runs = [step.get("run", "") for step in steps]
    python = steps[uses.index("actions/setup-python")]
    assert python["with"]["python-version"] == "3.11"
    assert any(run.startswith("pip install") and "prompttracker" in run for run in runs)
    validate = runs.index("pt validate")
    play = runs.index(f"pt run-tests --mock --junit-xml {JUNIT}")
    upload = uses.index("actions/upload-artifact")
    assert uses.index("actions/checkout") < validate < play < upload
    assert steps[upload]["if"] == "always()"
    assert steps[upload]["with"]["path"] == JUNIT
    text = (tmp_path / ".github/workflows/prompttracker.yml").read_text()
    assert "secrets.OPENAI_API_KEY" in text and "--replay cassettes" in text


def test_refuses_to_overwrite_and_writes_nothing(tmp_path):
    (tmp_path / "prompts").mkdir()
    (tmp_path / "prompts" / "support_assistant.yaml").write_text("mine")
    (tmp_path / "prompttracker.yaml").write_text("concurrency: 2\n")
    result = pt("init")
    assert result.exit_code == 2, result.output
    assert "wrote nothing" in result.output
    assert "prompts/support_assistant.yaml" in result.output
    assert "prompttracker.yaml" in result.output
    assert "datasets/support_conversations.yaml" not in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["prompts", "prompttracker.yaml"]
    assert (tmp_path / "prompts" / "support_assistant.yaml").read_text() == "mine"
    assert (tmp_path / "prompttracker.yaml").read_text() == "concurrency: 2\n"


def test_init_into_a_new_subdirectory(tmp_path):
    result = pt("init", "projects/support")
    assert result.exit_code == 0, result.output
    root = tmp_path / "projects" / "support"
    assert (root / "prompts" / "support_assistant.yaml").is_file()
    assert "cd projects/support" in result.output
    assert not (tmp_path / "prompts").exists()
    result = pt("validate", "-p", "projects/support")
    assert result.exit_code == 0, result.output


def test_an_existing_gitignore_is_left_alone(tmp_path):
    (tmp_path / ".gitignore").write_text("node_modules/\n")
    result = pt("init")
    assert result.exit_code == 0, result.output
    assert (tmp_path / ".gitignore").read_text() == "node_modules/\n"
    assert "left alone" in result.output and ".prompttracker/" in result.output

    (tmp_path / "again").mkdir()
    (tmp_path / "again" / ".gitignore").write_text("/.prompttracker\n")
    result = pt("init", "again")
    assert result.exit_code == 0, result.output
    assert "already ignores .prompttracker/" in result.output


def test_a_file_where_the_folder_should_be_is_bad_input(tmp_path):
    (tmp_path / "taken").write_text("")
    result = pt("init", "taken")
    assert result.exit_code == 2, result.output
    (tmp_path / "schemas").write_text("")
    result = pt("init")
    assert result.exit_code == 2, result.output
    assert "schemas/prompt.schema.json" in result.output
    assert not (tmp_path / "prompts").exists()
