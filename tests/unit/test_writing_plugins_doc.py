"""The plugins built in ``docs/writing_plugins.md`` work: their files, taken from the page, register
through the entry point the page declares and pass the conformance suite: the ``torchsave``
exporter, and the ``keyphrase`` task built on the toolkit."""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

import pytest

from assistant_builder.cli.plugins_check import render_table
from assistant_builder.conformance import run_conformance

DOC = Path(__file__).resolve().parents[2] / "docs" / "writing_plugins.md"
BLOCK = re.compile(r'^```\w+ title="(?P<path>[^"]+)"\n(?P<body>.*?)^```$', re.MULTILINE | re.DOTALL)


def files_in_doc() -> dict[str, str]:
    return {m["path"]: m["body"] for m in BLOCK.finditer(DOC.read_text(encoding="utf-8"))}


@pytest.fixture
def package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The walk-through's project, written out from the page's titled code blocks."""
    root = tmp_path / "builder-torchsave"
    for relative, body in files_in_doc().items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(body)
    monkeypatch.syspath_prepend(str(root))
    for module in ("builder_torchsave", "builder_keyphrases"):
        monkeypatch.delitem(sys.modules, module, raising=False)
    return root


def test_the_page_has_the_plugins_their_entry_point_and_their_tests() -> None:
    assert set(files_in_doc()) == {"builder_torchsave/__init__.py", "pyproject.toml", "tests/test_torchsave.py",
                                   "builder_keyphrases/__init__.py", "tests/test_keyphrases.py"}


def test_the_entry_point_names_the_module(package: Path) -> None:
    pyproject = tomllib.loads((package / "pyproject.toml").read_text())
    assert pyproject["project"]["entry-points"]["assistant_builder"] == {"torchsave": "builder_torchsave"}
    assert (package / pyproject["project"]["entry-points"]["assistant_builder"]["torchsave"] / "__init__.py").is_file()


def test_the_plugin_registers(package: Path, register_plugin) -> None:  # type: ignore[no-untyped-def]
    import builder_torchsave

    registry = register_plugin(builder_torchsave)
    assert registry.get("exporter", "torchsave").component is builder_torchsave.TorchSaveExporter


def test_the_plugin_passes_the_conformance_suite(package: Path, tiny_model_dir: Path, tmp_path: Path) -> None:
    import builder_torchsave

    results = run_conformance(builder_torchsave.TorchSaveExporter, model_dir=tiny_model_dir, work_dir=tmp_path / "work",
                              plugin="torchsave")
    assert [r for r in results if r.status != "pass"] == []
    # the page shows this table: keep it in step with what the suite prints
    table = render_table(results)
    text = DOC.read_text(encoding="utf-8")
    for line in table.splitlines():
        if line and "max diff" not in line:  # differences are numbers that may vary
            assert line in text, f"docs/writing_plugins.md shows an outdated `builder plugins check` table; expected:\n{table}"


def test_the_keyphrase_task_is_built_on_the_public_api_alone(package: Path) -> None:
    source = (package / "builder_keyphrases" / "__init__.py").read_text()
    imported = re.findall(r"^from (\S+) import", source, re.MULTILINE)
    assert {m for m in imported if m.startswith("assistant_builder")} <= {
        "assistant_builder.contracts", "assistant_builder.datasources", "assistant_builder.errors", "assistant_builder.hookspecs",
        *(f"assistant_builder.toolkit.{m}" for m in ("alignment", "collate", "decoding", "metrics", "readers", "tags", "windows",
                                                    "token_classifier"))}
    assert "assistant_builder_tasks" not in source
    assert len(source.splitlines()) < 150  # a few dozen lines of task logic, not a copy of the ner task


def test_the_keyphrase_task_registers_and_passes_the_conformance_suite(package: Path, register_plugin, tiny_model_dir: Path,  # type: ignore[no-untyped-def]
                                                                       tmp_path: Path) -> None:
    import builder_keyphrases

    assert register_plugin(builder_keyphrases).get("task", "keyphrase").component is builder_keyphrases.KeyphraseTask
    results = run_conformance(builder_keyphrases.KeyphraseTask, model_dir=tiny_model_dir, work_dir=tmp_path / "work",
                              plugin="keyphrase", modules=["builder_keyphrases"])
    assert [(r.check, r.status, r.detail) for r in results if r.status != "pass"] == []
    assert {"round trip", "torch-free runtime"} & {r.check for r in results} == {"torch-free runtime"}  # the round trip ran in full


def test_the_keyphrase_task_reads_decodes_and_scores(package: Path, tiny_model_dir: Path, tmp_path: Path) -> None:
    import numpy as np

    from assistant_builder.errors import DataError
    from assistant_builder.recipe.schema import DataSection
    from assistant_builder.tokenization import load_tokenizer
    from builder_keyphrases import KeyphraseTask

    task = KeyphraseTask()
    data = task.load_data(DataSection(**{k: tmp_path / v for k, v in task.sample_data(tmp_path).items()}), task.Options())
    assert data.labels == ["O", "B-problem", "I-problem", "B-product", "I-product"]
    assert data.train[3].tags == ("O", "B-product", "O", "B-problem", "I-problem") and data.train[3].text == "the alarm is too loud"
    example = task.parse_input("my lights are too bright")
    features = task.encode([example], load_tokenizer(tiny_model_dir, 32), data.labels, task.Options(), 32)
    logits = np.zeros((len(features[0]["input_ids"]), len(data.labels)))
    for word, position in features[0]["owned"]:  # "lights": B-product, "too": B-problem, "bright": I-product (invalid)
        logits[position, {1: 3, 3: 1, 4: 4}.get(word, 0)] = 5.0
    logits[features[0]["owned"][4][1], 2] = 4.9  # "bright" is almost as likely I-problem
    for decoder, phrases in (("argmax", [("product", "lights"), ("problem", "too"), ("product", "bright")]),  # repaired: B-product
                             ("best_path", [("product", "lights"), ("problem", "too bright")])):
        [prediction] = task.decode({"logits": [logits]}, features, [example], data.labels, task.Options(decoder=decoder))
        assert [(p["label"], p["text"]) for p in prediction["phrases"]] == phrases
    assert task.evaluate([{"tags": list(t.tags)} for t in data.validation], data.validation, data.labels).metrics["f1"] == 1.0
    (tmp_path / "bad.jsonl").write_text('{"text": "my milk", "phrases": [{"start": 3, "end": 7, "label": "B-product"}]}\n')
    with pytest.raises(DataError, match="bad.jsonl:1: phrase 1: 'label' must be a phrase type"):
        task.load_data(DataSection(train=tmp_path / "bad.jsonl", validation=tmp_path / "bad.jsonl"), task.Options())
