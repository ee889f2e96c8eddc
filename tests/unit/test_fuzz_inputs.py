"""Property-based tests: random and malformed inputs give a valid result or a BuilderError, nothing else."""

from __future__ import annotations

import json
import string
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from assistant_builder.errors import BuilderError
from assistant_builder.recipe.loader import load_recipe
from assistant_builder.recipe.schema import DataSection
from assistant_builder.registry import build_registry

REGISTRY = build_registry()
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

toml_scalars = st.one_of(st.integers(-5, 10**6), st.floats(allow_nan=False, allow_infinity=False, width=32),
                         st.booleans(), st.text(string.printable, max_size=12))
KEYS = ["recipe_version", "name", "task", "model", "data", "train", "export", "output", "type", "options", "epochs",
        "batch_size", "learning_rate", "formats", "base", "max_length", "train", "validation", "trainer", "nope"]


def toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return json.dumps(value)


@FUZZ
@given(st.text(max_size=300))
def test_arbitrary_text_as_recipe(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("fuzz") / "recipe.toml"
    path.write_text(text, encoding="utf-8")
    try:
        load_recipe(path, registry=REGISTRY)
    except BuilderError:
        pass


@FUZZ
@given(st.dictionaries(st.sampled_from(["task", "model", "data", "train", "export"]),
                       st.dictionaries(st.sampled_from(KEYS), toml_scalars, max_size=4), max_size=5),
       st.lists(st.tuples(st.sampled_from(["train.epochs", "train.nope", "model.base.x", "export.formats", "bad"]),
                          st.text(string.printable, max_size=8)), max_size=3))
def test_structured_random_recipes_and_overrides(tmp_path_factory, tables, overrides):
    lines = ['recipe_version = 1', 'name = "fuzz"']
    for table, values in tables.items():
        lines.append(f"[{table}]")
        lines.extend(f"{key} = {toml_value(value)}" for key, value in values.items())
    path = tmp_path_factory.mktemp("fuzz") / "recipe.toml"
    path.write_text("\n".join(lines) + "\n")
    try:
        load_recipe(path, [f"{k}={v}" for k, v in overrides], registry=REGISTRY)
    except BuilderError:
        pass


@FUZZ
@given(st.lists(st.one_of(st.text(max_size=40), st.binary(max_size=40).map(lambda b: b.decode("latin-1")),
                          st.dictionaries(st.sampled_from(["text", "label", "id", "x"]),
                                          st.one_of(st.text(max_size=10), st.integers(), st.none(), st.booleans()),
                                          max_size=3).map(json.dumps)), max_size=8),
       st.sampled_from(["train.jsonl", "train.csv"]))
def test_classification_reader_on_random_files(tmp_path_factory, lines, name):
    task = REGISTRY.create("task", "classification")
    path: Path = tmp_path_factory.mktemp("fuzz") / name
    path.write_bytes("\n".join(lines).encode("utf-8", errors="surrogatepass") if lines else b"")
    try:
        data = task.load_data(DataSection(train=path), task.Options())
    except BuilderError:
        return
    assert len(data.labels) >= 2 and data.train and data.validation
