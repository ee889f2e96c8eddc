"""Pytest fixtures for plugin authors (and this project's own tests).

Enabled automatically through the ``pytest11`` entry point once assistant-builder is installed:

* ``plugin_manager``: a fresh plugin manager with the installed plugins (never a global one).
* ``register_plugin``: ``register_plugin(obj)`` adds a plugin object for one test and returns the
  resulting ``Registry``.
* ``tiny_model_dir``: a tiny randomly initialised BERT (2 layers, hidden 32) with a WordPiece
  ``tokenizer.json``, saved as a local Hugging Face model folder. Built in code, no download.
* ``write_recipe``: ``write_recipe(tmp_path, **sections)`` writes a recipe TOML using the tiny model.

And the conformance suite (``assistant_builder.conformance``), for a plugin's own tests::

    from assistant_builder.testing import assert_conforms, conformance_tests

    test_conformance = conformance_tests(MyTask, MyExporter)   # one test per component

    def test_my_task(tiny_model_dir, tmp_path):                # or call it yourself
        assert_conforms(MyTask, model_dir=tiny_model_dir, work_dir=tmp_path)
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from assistant_builder.conformance import CheckResult, run_conformance
from assistant_builder.conformance.tiny_model import WORDS, make_tiny_bert, make_tiny_vocab

# re-exported: plugin tests import them from here
__all__ = ["WORDS", "CheckResult", "assert_conforms", "conformance_tests", "make_tiny_bert", "make_tiny_vocab", "run_conformance"]

TOY_INTENTS = {
    "alarm": ["wake me up at {n} am", "set an alarm for {n}", "alarm at {n} please", "i need an alarm at {n}"],
    "weather": ["what is the weather in london", "will it rain tomorrow", "is it cold in paris today", "weather for {n} pm"],
    "music": ["play a song", "play some music", "play music by john", "i want songs at {n} pm"],
}


def write_intent_data(directory: Path, per_label: int = 24, seed: int = 0) -> None:
    """Write ``train.jsonl`` and ``valid.jsonl`` (fields ``text``, ``intent``) from ``TOY_INTENTS``:
    small, learnable data for end-to-end tests of a classification recipe."""
    import random

    rng = random.Random(seed)
    for split, count in (("train", per_label), ("valid", max(3, per_label // 3))):
        rows = []
        for label, patterns in TOY_INTENTS.items():
            for _ in range(count):
                rows.append({"text": rng.choice(patterns).format(n=rng.randint(1, 12)), "intent": label})
        rng.shuffle(rows)
        (Path(directory) / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def recipe_toml(sections: dict[str, Any]) -> str:
    """Render nested dicts as TOML (enough for recipes: scalars, lists, nested tables)."""
    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (int, float)):
            return repr(v)
        if isinstance(v, (list, tuple)):
            return "[" + ", ".join(value(x) for x in v) + "]"
        return json.dumps(str(v))

    lines: list[str] = []

    def table(prefix: str, data: dict[str, Any]) -> None:
        scalars = {k: v for k, v in data.items() if not isinstance(v, dict)}
        if prefix:
            lines.append(f"\n[{prefix}]")
        lines.extend(f"{k} = {value(v)}" for k, v in scalars.items())
        for k, v in data.items():
            if isinstance(v, dict):
                table(f"{prefix}.{k}" if prefix else k, v)

    table("", sections)
    return "\n".join(lines) + "\n"


@pytest.fixture
def plugin_manager(monkeypatch: pytest.MonkeyPatch) -> Any:
    """A fresh plugin manager with the installed plugins."""
    from assistant_builder.plugins import make_plugin_manager

    return make_plugin_manager()


@pytest.fixture
def register_plugin(plugin_manager: Any) -> Callable[..., Any]:
    """Register plugin objects for this test only; returns the rebuilt ``Registry``."""
    from assistant_builder.registry import build_registry

    def register(*plugins: Any) -> Any:
        for plugin in plugins:
            plugin_manager.register(plugin)
        return build_registry(plugin_manager)

    return register


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random BERT model folder (built once per test session)."""
    return make_tiny_bert(tmp_path_factory.mktemp("tiny-bert"))


@pytest.fixture
def write_recipe(tiny_model_dir: Path) -> Callable[..., Path]:
    """``write_recipe(directory, **sections)`` writes ``directory/recipe.toml`` (tiny model by default).

    On the tiny model, ``train.freeze_word_embeddings`` defaults to false: its word embeddings are
    random, so unlike a pretrained encoder's they must be trained for the model to learn anything.
    On any model, ``train.min_steps`` defaults to 0, so a test trains exactly its ``train.epochs``
    (the product default would raise a few-example test to 600 steps).
    """
    def write(directory: Path, **sections: Any) -> Path:
        data: dict[str, Any] = {"recipe_version": 1, "name": sections.pop("name", "test")}
        data["model"] = {"base": str(tiny_model_dir), "max_length": 32, **sections.pop("model", {})}
        if data["model"]["base"] == str(tiny_model_dir):
            sections["train"] = {"freeze_word_embeddings": False, **sections.get("train", {})}
        sections["train"] = {"min_steps": 0, **sections.get("train", {})}
        data.update(sections)
        path = Path(directory) / "recipe.toml"
        path.write_text(recipe_toml(data))
        return path

    return write


def format_results(results: Sequence[CheckResult], statuses: Sequence[str] = ("fail",), tracebacks: bool = True) -> str:
    """The results with one of ``statuses`` as readable lines (with the plugin's traceback for failures)."""
    lines = []
    for result in results:
        if result.status in statuses:
            lines.append(f"{result.kind} '{result.component}': {result.check}: {result.status.upper()}: {result.detail}")
            if tracebacks and result.traceback:
                lines.append("    " + result.traceback.rstrip().replace("\n", "\n    "))
    return "\n".join(lines)


def assert_conforms(component: type[Any], *, model_dir: Path | None = None, work_dir: Path | None = None,
                    strict: bool = False) -> list[CheckResult]:
    """Run the conformance suite on ``component`` and fail the test on any failed check
    (with ``strict=True``, on skips and warnings too). Returns the results."""
    results = run_conformance(component, model_dir=model_dir, work_dir=work_dir)
    statuses = ("fail", "skip", "warn") if strict else ("fail",)
    if any(r.status in statuses for r in results):
        pytest.fail(f"{getattr(component, '__name__', component)} does not conform:\n{format_results(results, statuses)}", pytrace=False)
    return results


def conformance_tests(*components: type[Any], strict: bool = False) -> Callable[..., None]:
    """A test function parametrised over ``components``; assign it to a ``test_`` name in a test module:

    ``test_conformance = conformance_tests(MyTask, MyTrainer)``
    """
    ids = [f"{getattr(c, 'name', c.__name__)}" for c in components]

    @pytest.mark.parametrize("conformance_component", components, ids=ids)
    def test_conformance(conformance_component: type[Any], tiny_model_dir: Path, tmp_path: Path) -> None:
        assert_conforms(conformance_component, model_dir=tiny_model_dir, work_dir=tmp_path, strict=strict)

    return test_conformance
