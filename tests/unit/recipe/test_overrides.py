"""``builder run recipe.toml key=value`` overrides: parsed as TOML values and type-checked."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from assistant_builder.cli.main import main
from assistant_builder.errors import ConfigError
from assistant_builder.recipe import Recipe, load_recipe
from assistant_builder.recipe.overrides import apply_overrides, parse_value
from assistant_builder.registry import build_registry
from assistant_builder.testing import recipe_toml

REPO = Path(__file__).resolve().parents[3]
TRAIN = REPO / "recipes" / "data" / "intents.train.jsonl"
VALID = REPO / "recipes" / "data" / "intents.valid.jsonl"
RAW: dict[str, Any] = {"recipe_version": 1, "name": "t", "task": {"type": "classification"}, "data": {"train": "x.jsonl"}}


@pytest.fixture(scope="module")
def registry() -> Any:
    return build_registry()


@pytest.fixture
def recipe(tmp_path: Path) -> Path:
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "config.json").write_text("{}")
    path = tmp_path / "recipe.toml"
    path.write_text(recipe_toml({
        "recipe_version": 1, "name": "t",
        "task": {"type": "classification", "options": {"label_field": "intent"}},
        "model": {"base": "model"},
        "data": {"train": str(TRAIN), "validation": str(VALID)},
        "train": {"epochs": 5},
        "export": {"formats": []},
    }))
    return path


def issues_of(path: Path, overrides: list[str], registry: Any) -> dict[str, str]:
    with pytest.raises(ConfigError) as caught:
        load_recipe(path, overrides, registry=registry)
    return {issue.location: issue.message for issue in caught.value.issues}


@pytest.mark.parametrize(("text", "value"), [
    ("3", 3), ("0.5", 0.5), ("1e-4", 1e-4), ("true", True), ('["onnx"]', ["onnx"]), ("three", "three"),
    ('"3"', "3"), ("hello world", "hello world"),
])
def test_parse_value_reads_toml_values_else_strings(text: str, value: Any) -> None:
    parsed = parse_value(text)
    assert parsed == value and type(parsed) is type(value)


def test_int_override_applied_as_int(recipe: Path, registry: Any) -> None:
    loaded = load_recipe(recipe, ["train.epochs=3"], registry=registry)
    assert loaded.recipe.train.epochs == 3
    assert loaded.raw["train"]["epochs"] == 3


def test_overrides_do_not_mutate_the_input() -> None:
    result, issues = apply_overrides(RAW, ["train.epochs=3", "task.options.text_field=body"], Recipe)
    assert not issues
    assert result["train"] == {"epochs": 3} and result["task"]["options"] == {"text_field": "body"}
    assert "train" not in RAW and "options" not in RAW["task"]


def test_non_integer_override_is_error_at_key(recipe: Path, registry: Any) -> None:
    issues = issues_of(recipe, ["train.epochs=three"], registry)
    assert issues == {"train.epochs": "expected an integer, got 'three'"}


def test_list_override(recipe: Path, registry: Any) -> None:
    loaded = load_recipe(recipe, ['export.formats=["onnx"]'], registry=None)
    assert loaded.recipe.export.formats == ["onnx"]


def test_unknown_key_named_with_did_you_mean(recipe: Path, registry: Any) -> None:
    issues = issues_of(recipe, ["train.nope=1", "train.epoch=1"], registry)
    assert set(issues) == {"override train.nope", "override train.epoch"}
    assert "no key 'nope' in train" in issues["override train.nope"]
    assert "expected one of:" in issues["override train.nope"] and "epochs" in issues["override train.nope"]
    assert "did you mean 'epochs'?" in issues["override train.epoch"]


def test_unknown_top_level_table(recipe: Path, registry: Any) -> None:
    issues = issues_of(recipe, ["trian.epochs=1"], registry)
    assert "no key 'trian' in the recipe; did you mean 'train'?" in issues["override trian.epochs"]


def test_key_below_a_value_is_error(recipe: Path, registry: Any) -> None:
    issues = issues_of(recipe, ["model.base.x=1"], registry)
    assert issues == {"override model.base.x": "'model.base' is a value, not a table"}


def test_task_option_override_validated_by_task_options(recipe: Path, registry: Any) -> None:
    loaded = load_recipe(recipe, ["task.options.text_field=body"], registry=registry)
    assert loaded.recipe.task.options["text_field"] == "body"
    issues = issues_of(recipe, ["task.options.text_feild=body", "task.options.top_k=zero"], registry)
    assert set(issues) == {"task.options.text_feild", "task.options.top_k"}
    assert "did you mean 'text_field'?" in issues["task.options.text_feild"]


def test_override_without_equals_is_error(recipe: Path, registry: Any) -> None:
    issues = issues_of(recipe, ["train.epochs"], registry)
    assert list(issues) == ["override 'train.epochs'"]
    assert "expected KEY=VALUE" in issues["override 'train.epochs'"]


def test_override_with_empty_key_is_error() -> None:
    _, issues = apply_overrides(RAW, ["=3"], Recipe)
    assert len(issues) == 1 and "expected KEY=VALUE" in issues[0].message


def test_all_override_problems_reported_together(recipe: Path, registry: Any) -> None:
    issues = issues_of(recipe, ["train.epochs=three", "train.nope=1", "bad", "train.batch_size=0"], registry)
    assert set(issues) == {"train.epochs", "override train.nope", "override 'bad'", "train.batch_size"}


def test_validate_cli_accepts_overrides(recipe: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(recipe), "train.epochs=2", "train.trainer=lora"]) == 0
    assert "trainer 'lora'" in capsys.readouterr().out
    assert main(["validate", str(recipe), "train.epochs=two"]) == 2
    assert "train.epochs: expected an integer, got 'two'" in capsys.readouterr().err
