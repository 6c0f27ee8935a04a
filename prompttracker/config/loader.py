"""The one loader: read every YAML file, validate, and report all problems of all files at once."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, TypeVar, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError

from prompttracker.config.models import Dataset, EvaluatorSpec, Prompt, PromptVersion, Test
from prompttracker.config.settings import SETTINGS_FILE, Settings
from prompttracker.errors import ConfigError, did_you_mean
from prompttracker.templating import TemplateError, check_syntax, render

M = TypeVar("M", bound=BaseModel)

# What a file may hold once its aliases are expanded, and how deep: far beyond any real project,
# far below what would exhaust memory or the stack (a "billion laughs" file, deep nesting).
MAX_VALUES = 1_000_000
MAX_DEPTH = 100
# A dataset is datasets/<name> with one of these suffixes; CSV and JSONL are read by ``tabular``.
TABULAR_SUFFIXES = (".csv", ".jsonl")
DATASET_SUFFIXES = (".yaml", ".yml", *TABULAR_SUFFIXES)


class _Checks:
    """Refuse duplicate keys (at any level, the last one would silently win) and binary
    values (``!!binary``: prompts and variables are text)."""

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        seen: dict[Any, Any] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)  # type: ignore[attr-defined]
            try:
                first = seen.setdefault(key, key_node)
            except TypeError:
                continue  # an unhashable key: the base constructor reports it
            if first is not key_node:
                raise yaml.constructor.ConstructorError(
                    f"in the mapping that starts on line {node.start_mark.line + 1}",
                    node.start_mark,
                    f"duplicate key {key!r} (first on line {first.start_mark.line + 1}): "
                    "the last one would silently win; keep one",
                    key_node.start_mark,
                )
        return super().construct_mapping(node, deep=deep)  # type: ignore[misc]

    def construct_yaml_binary(self, node: Any) -> Any:
        raise yaml.constructor.ConstructorError(
            None,
            None,
            "a binary value (!!binary): prompts, variables and outputs must be text",
            node.start_mark,
        )


def _checked(base: type[yaml.SafeLoader]) -> type[yaml.SafeLoader]:
    loader = type(f"Checked{base.__name__}", (_Checks, base), {})
    loader.add_constructor("tag:yaml.org,2002:binary", _Checks.construct_yaml_binary)
    return loader  # type: ignore[return-value]


SAFE_LOADER = _checked(yaml.SafeLoader)
# libyaml's loader when PyYAML was built with it: several times faster on big datasets. Its
# error positions are the same, its wording sometimes poorer ("found undefined alias" without
# the alias), so a file it refuses is parsed again by the pure-Python loader for the message.
FAST_LOADER = _checked(getattr(yaml, "CSafeLoader", yaml.SafeLoader))


class YamlTooBig(yaml.YAMLError):
    """A document whose aliases expand past ``MAX_VALUES`` values, or nested past
    ``MAX_DEPTH``."""


def parse_yaml(text: str) -> Any:
    """``yaml.safe_load`` with the checks above, libyaml when available; errors as PyYAML
    words them. A document that is too big or too deep raises ``YamlTooBig``."""
    try:
        try:
            data = yaml.load(text, Loader=FAST_LOADER)
        except yaml.YAMLError:
            if FAST_LOADER is SAFE_LOADER:
                raise
            data = yaml.load(text, Loader=SAFE_LOADER)
    except RecursionError:
        raise YamlTooBig(f"it is nested too deeply (more than {MAX_DEPTH} levels)") from None
    _check_size(data)
    return data


class TooDeep(ValueError):
    """Nested past ``MAX_DEPTH`` levels."""


class TooMany(ValueError):
    """More values than a limit allows."""


def count_values(data: Any, limit: int | None = MAX_VALUES) -> int:
    """How many values ``data`` holds, keys included, walked as its readers will (YAML aliases
    expanded); ``TooDeep`` past ``MAX_DEPTH`` levels, ``TooMany`` past ``limit`` values."""
    stack: list[tuple[Any, int]] = [(data, 1)]
    values = 0
    while stack:
        value, depth = stack.pop()
        values += 1
        if limit is not None and values > limit:
            raise TooMany(f"more than {limit:,} values")
        if depth > MAX_DEPTH:
            raise TooDeep(f"nested more than {MAX_DEPTH} levels deep")
        if isinstance(value, dict):
            stack.extend((item, depth + 1) for pair in value.items() for item in pair)
        elif isinstance(value, list):
            stack.extend((item, depth + 1) for item in value)
    return values


def _check_size(data: Any) -> None:
    """The document as its readers will see it (aliases expanded) stays within the limits."""
    try:
        count_values(data)
    except TooMany:
        raise YamlTooBig(
            f"its aliases expand past {MAX_VALUES:,} values (an alias bomb?): write the "
            "values out, or use fewer aliases"
        ) from None
    except TooDeep:
        raise YamlTooBig(f"it is nested too deeply (more than {MAX_DEPTH} levels)") from None


@dataclass(frozen=True)
class Problem:
    """One problem of one file. ``path`` (keys and indexes, as pydantic gives them) leads to
    the offending key, whose line ``with_lines`` looks up once all problems are known."""

    file: str
    location: str
    message: str
    path: tuple[str | int, ...] = ()
    line: int | None = None

    def __str__(self) -> str:
        parts = [self.file]
        if self.line is not None:
            parts.append(f"line {self.line}")
        if self.location:
            parts.append(self.location)
        return ": ".join([*parts, self.message])


def with_lines(root: Path, problems: list[Problem]) -> list[Problem]:
    """The problems, each with the line of its ``path`` in its file (each file read once more,
    and only when it has a problem to place), in file order and then line order."""
    documents: dict[str, Any] = {}
    placed = []
    for problem in problems:
        if problem.path and problem.line is None:
            if problem.file not in documents:
                documents[problem.file] = _compose(root / problem.file)
            line = _line_of(documents[problem.file], problem.path)
            problem = replace(problem, line=line)
        placed.append(problem)
    files = list(dict.fromkeys(p.file for p in placed))
    return sorted(placed, key=lambda p: (files.index(p.file), p.line or 0))


def _compose(path: Path) -> yaml.Node | None:
    try:
        return yaml.compose(path.read_text(encoding="utf-8"), Loader=SAFE_LOADER)
    except (OSError, UnicodeDecodeError, yaml.YAMLError, RecursionError):
        return None


def _line_of(node: yaml.Node | None, path: tuple[str | int, ...]) -> int | None:
    """The line of the key at ``path``; of the nearest enclosing one when the path goes on
    past what the file has (a missing field, pydantic's own loc parts)."""
    if node is None:
        return None
    line = node.start_mark.line + 1
    for part in path:
        if isinstance(node, yaml.MappingNode):
            found = next((pair for pair in node.value if pair[0].value == str(part)), None)
            if found is None:
                continue  # a union's tag in the loc, say: the next part may still match
            line, node = found[0].start_mark.line + 1, found[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(node.value):
                break
            node = node.value[part]
            line = node.start_mark.line + 1
    return line


@dataclass
class Project:
    """Everything under a project root: settings, prompts by slug, datasets by name."""

    root: Path
    settings: Settings
    prompts: dict[str, Prompt] = field(default_factory=dict)
    datasets: dict[str, Dataset] = field(default_factory=dict)

    def prompt_file(self, slug: str) -> str:
        return relative(self.root, find_yaml(self.root / "prompts", slug))

    def dataset_file(self, name: str) -> str:
        return relative(self.root, find_dataset(self.root / "datasets", name))

    def versions_for(self, prompt: Prompt, test: Test) -> list[PromptVersion]:
        """The versions a test runs: those it names, else the active one."""
        if test.versions:
            return [v for n in test.versions if (v := prompt.version(n)) is not None]
        active = prompt.active_version
        return [active] if active else []


def project_root(root: Path | str = ".") -> Path:
    """The project folder: ``root`` itself, or — when ``root`` is the current folder and holds
    neither ``prompts/`` nor the settings file — the nearest parent that does, as git and pytest
    find theirs. ``pt`` then works from any subfolder of a project."""
    root = Path(root).resolve()
    if _is_project(root) or root != Path.cwd().resolve():
        return root
    return next((parent for parent in root.parents if _is_project(parent)), root)


def _is_project(folder: Path) -> bool:
    return (folder / "prompts").is_dir() or (folder / SETTINGS_FILE).is_file()


def load_project(root: Path | str = ".") -> Project:
    """Load and validate a project; raise one ConfigError listing every problem found."""
    from prompttracker.evaluators.python import add_import_root

    root = project_root(root)
    add_import_root(root)  # `type: python` evaluators import the project's own modules
    problems: list[Problem] = []
    settings = _load_settings(root, problems)
    project = Project(root=root, settings=settings or Settings())
    for path in yaml_files(root / "prompts"):
        prompt = load_model(root, path, Prompt, problems)
        if prompt is not None:
            project.prompts[path.stem] = prompt
    project.datasets = load_datasets(root, problems)
    if not (root / "prompts").is_dir():
        problems.append(
            Problem(
                f"{root}/prompts/",
                "",
                "folder not found (nor in any parent folder); create prompts/<name>.yaml, or "
                "point -p at the project",
            )
        )
    problems.extend(_check_references(project))
    raise_problems(root, problems, "the project files", "pt validate")
    return project


def raise_problems(root: Path, problems: list[Problem], what: str, command: str) -> None:
    """One ``ConfigError`` listing every problem (each with its line), when there are any."""
    problems = with_lines(root, problems)
    if problems:
        raise ConfigError(
            f"{len(problems)} problem(s) in {what}:\n" + "\n".join(f"  {p}" for p in problems),
            hint=f"fix the files above, then run `{command}` again",
        )


def load_settings(root: Path | str = ".") -> Settings:
    """Only the project settings (for commands that read results, not prompts)."""
    root = project_root(root)
    problems: list[Problem] = []
    settings = _load_settings(root, problems)
    if settings is None:
        raise ConfigError(
            "\n".join(str(p) for p in problems), hint=f"fix {SETTINGS_FILE} and try again"
        )
    return settings


def _load_settings(root: Path, problems: list[Problem]) -> Settings | None:
    path = root / SETTINGS_FILE
    if not path.exists():
        return Settings()
    return load_model(root, path, Settings, problems)


def yaml_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())


def dataset_files(folder: Path) -> dict[str, list[Path]]:
    """Every dataset file under ``folder``, by name (its stem): more than one file is a
    conflict."""
    files: dict[str, list[Path]] = {}
    if folder.is_dir():
        for path in sorted(folder.iterdir()):
            if path.suffix in DATASET_SUFFIXES and path.is_file():
                files.setdefault(path.stem, []).append(path)
    return files


def find_dataset(folder: Path, stem: str) -> Path:
    """The file of dataset ``stem`` (``datasets/<stem>.yaml`` when there is none)."""
    for suffix in DATASET_SUFFIXES:
        if (candidate := folder / f"{stem}{suffix}").is_file():
            return candidate
    return folder / f"{stem}.yaml"


def load_datasets(root: Path, problems: list[Problem]) -> dict[str, Dataset]:
    """Every valid dataset by name. Two files of one name (``billing.yaml`` and ``billing.csv``)
    are a problem, and neither is used: a test's ``dataset: billing`` could mean either."""
    datasets: dict[str, Dataset] = {}
    for stem, paths in dataset_files(root / "datasets").items():
        names = [relative(root, p) for p in paths]
        if len(paths) > 1:
            both, other = ("both", "the other") if len(paths) == 2 else ("all", "the others")
            message = (
                f"{' and '.join(names)} are {both} dataset {stem!r}: a test's `dataset: {stem}` "
                f"would not know which to read; keep one (rename or remove {other})"
            )
            problems.append(Problem(names[0], "", message))
        loaded = [load_dataset(root, path, problems) for path in paths]
        if len(loaded) == 1 and loaded[0] is not None:
            datasets[stem] = loaded[0]
    return datasets


def load_dataset(root: Path, path: Path, problems: list[Problem]) -> Dataset | None:
    """One dataset file, YAML, CSV or JSONL; ``None`` with its problems added."""
    if path.suffix in TABULAR_SUFFIXES:
        from prompttracker.config.tabular import load_tabular  # it imports this module

        return load_tabular(root, path, problems)
    return load_model(root, path, Dataset, problems)


def find_yaml(folder: Path, stem: str) -> Path:
    for suffix in (".yaml", ".yml"):
        if (candidate := folder / f"{stem}{suffix}").exists():
            return candidate
    return folder / f"{stem}.yaml"


def relative(root: Path, path: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def load_model(root: Path, path: Path, model: type[M], problems: list[Problem]) -> M | None:
    name = relative(root, path)
    try:
        data: Any = parse_yaml(path.read_text(encoding="utf-8"))
    except YamlTooBig as exc:
        problems.append(Problem(name, "", f"refused: {exc}"))
        return None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        problems.append(Problem(name, where, f"invalid YAML: {problem}"))
        return None
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(Problem(name, "", f"cannot read file: {exc}"))
        return None
    if not isinstance(data, dict):
        kind = "empty" if data is None else f"a {type(data).__name__}"
        problems.append(Problem(name, "", f"expected a mapping at the top level, found {kind}"))
        return None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        for error in exc.errors():
            problems.append(
                Problem(
                    name, location_text(error["loc"]), error_message(error, model), error["loc"]
                )
            )
        if model is Prompt:
            problems.extend(_salvaged_prompt_checks(name, data))
        return None


def _salvaged_prompt_checks(name: str, data: dict[str, Any]) -> list[Problem]:
    """The checks of a prompt file that does not validate which need none of its other parts:
    template syntax and evaluator configs, so that one pass reports them too."""
    from prompttracker.evaluators.registry import located_config_problems

    problems = []
    versions = data.get("versions")
    for i, version in enumerate(versions if isinstance(versions, list) else []):
        for key in ("system_prompt", "user_prompt"):
            source = version.get(key) if isinstance(version, dict) else None
            if not isinstance(source, str):
                continue
            try:
                check_syntax(source)
            except TemplateError as exc:
                where = f"versions[{i}].{key}"
                problems.append(Problem(name, where, str(exc), ("versions", i, key)))
    tests = data.get("tests")
    for t, test in enumerate(tests if isinstance(tests, list) else []):
        evaluators = test.get("evaluators") if isinstance(test, dict) else None
        for e, raw in enumerate(evaluators if isinstance(evaluators, list) else []):
            try:
                spec = EvaluatorSpec.model_validate(raw)
            except ValidationError:
                continue  # reported above, with the file's own errors
            at = ("tests", t, "evaluators", e)
            where = f"tests[{t}] ({test.get('name')}).evaluators[{e}] ({spec.type})"
            for inner, message in located_config_problems(spec):
                problems.append(Problem(name, where, message, (*at, *inner)))
    return problems


def location_text(loc: tuple[Any, ...]) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        else:
            parts.append(("." if parts else "") + str(item))
    return "".join(parts) or "(top level)"


def error_message(error: Any, model: type[BaseModel]) -> str:
    if isinstance(error.get("input"), bool) and error["type"] in ("int_type", "float_type"):
        return (
            f"expected a number, found the YAML boolean {str(error['input']).lower()} (YAML "
            "reads yes/no/on/off/true/false as booleans): write the number itself"
        )
    if error["type"] == "extra_forbidden":
        return "unknown field" + did_you_mean(
            str(error["loc"][-1]), _fields_at(model, error["loc"][:-1])
        )
    if error["type"] == "missing":
        return "required field is missing"
    return str(error["msg"]).removeprefix("Value error, ")


def _check_references(project: Project) -> list[Problem]:
    """Cross-file checks: datasets and versions exist, templates parse and render per row."""
    problems: list[Problem] = []
    for slug, prompt in project.prompts.items():
        file = project.prompt_file(slug)
        for i, version in enumerate(prompt.versions):
            for key in ("system_prompt", "user_prompt"):
                try:
                    check_syntax(getattr(version, key))
                except TemplateError as exc:
                    problems.append(
                        Problem(file, f"versions[{i}].{key}", str(exc), ("versions", i, key))
                    )
        for t, test in enumerate(prompt.tests):
            where = f"tests[{t}] ({test.name})"
            dataset = project.datasets.get(test.dataset)
            exists = find_dataset(project.root / "datasets", test.dataset).is_file()
            if dataset is None and not exists:  # an invalid one has its own problems above
                known = ", ".join(sorted(project.datasets)) or "none"
                problems.append(
                    Problem(
                        file,
                        f"{where}.dataset",
                        f"dataset {test.dataset!r} not found (expected datasets/"
                        f"{test.dataset}.yaml, .csv or .jsonl; known: {known})",
                        ("tests", t, "dataset"),
                    )
                )
            for number in test.versions or []:
                if prompt.version(number) is None:
                    problems.append(
                        Problem(
                            file,
                            f"{where}.versions",
                            f"version {number} does not exist",
                            ("tests", t, "versions"),
                        )
                    )
            if not test.versions and prompt.active_version is None:
                problems.append(
                    Problem(
                        file,
                        f"{where}.versions",
                        "no versions listed and the prompt has no active version; "
                        "set `status: active` on one version or list `versions: [N]`",
                        ("tests", t),
                    )
                )
            problems.extend(_check_evaluators(project, file, ("tests", t), prompt, test))
            if dataset is not None:
                problems.extend(_check_rendering(project, file, t, prompt, test, dataset))
    return problems


def _check_evaluators(
    project: Project, file: str, path: tuple[str | int, ...], prompt: Prompt, test: Test
) -> list[Problem]:
    """Each evaluator's type, config and targeting, and that every version the test runs can
    feed it (a tool check needs its tool, function_call needs functions)."""
    from prompttracker.evaluators.registry import capability_problem, located_config_problems

    problems = []
    where = f"{location_text(path)} ({test.name})"
    for e, spec in enumerate(test.evaluators):
        location = f"{where}.evaluators[{e}] ({spec.type})"
        at = (*path, "evaluators", e)
        for inner, message in located_config_problems(spec):
            problems.append(Problem(file, location, message, (*at, *inner)))
        for version in project.versions_for(prompt, test):
            versions = f"versions[{prompt.versions.index(version)}]"
            message = capability_problem(spec, version, versions)
            if message:
                problems.append(Problem(file, location, message, at))
    return problems


def _check_rendering(
    project: Project, file: str, t: int, prompt: Prompt, test: Test, dataset: Dataset
) -> list[Problem]:
    """Render each version's templates with each row. A template that does not parse is
    reported where it is written (see ``_check_references``); one that is too costly to render
    is reported once, for the first row that shows it."""
    problems = []
    seen: set[str] = set()
    dataset_file = project.dataset_file(test.dataset)
    for version in project.versions_for(prompt, test):
        for key in ("system_prompt", "user_prompt"):
            source = getattr(version, key)
            try:
                check_syntax(source)
            except TemplateError:
                continue
            for row in dataset.rows:
                try:
                    text = render(source, {**version.variables, **row.variables})
                    if key == "user_prompt" and dataset.mode == "single_turn" and not text.strip():
                        raise TemplateError(
                            "renders empty, and a single_turn row needs a message to send"
                        )
                except TemplateError as exc:
                    fix = (
                        "add it to the row's variables or the version's variables"
                        if exc.kind == "variable"
                        else "simplify the template"
                        if exc.kind == "limit"
                        else "fix the template or the row's variables"
                    )
                    message = (
                        f"version {version.version} {key}: {exc} for row {row.name!r} of "
                        f"{dataset_file}; {fix}"
                    )
                    if message not in seen:
                        seen.add(message)
                        problems.append(
                            Problem(file, f"tests[{t}] ({test.name})", message, ("tests", t))
                        )
                    if exc.kind == "limit":
                        break
    return problems


def _fields_at(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The field names (as written in files) of the model(s) at ``loc`` under ``model``."""
    types: list[Any] = [model]
    for part in loc:
        types = [inner for t in types for inner in _step(t, part)]
    names: set[str] = set()
    for t in types:
        for option in union_options(t):
            if isinstance(option, type) and issubclass(option, BaseModel):
                names |= {f.alias or n for n, f in option.model_fields.items()}
    return sorted(names)


def _step(annotation: Any, part: Any) -> list[Any]:
    found: list[Any] = []
    for option in union_options(annotation):
        origin = get_origin(option)
        if isinstance(option, type) and issubclass(option, BaseModel):
            if option.__name__ == part:  # pydantic names a union member in the loc
                found.append(option)
            for name, info in option.model_fields.items():
                if part in (name, info.alias):
                    found.append(info.annotation)
        elif origin in (list, tuple, set) and isinstance(part, int):
            found.extend(get_args(option)[:1])
        elif origin is dict:
            found.extend(get_args(option)[1:2])
    return found


def union_options(annotation: Any) -> list[Any]:
    """``annotation`` with ``X | None``, unions and ``Annotated`` opened up."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return union_options(get_args(annotation)[0])
    if origin in (Union, UnionType):
        return [o for arg in get_args(annotation) for o in union_options(arg)]
    return [annotation]
