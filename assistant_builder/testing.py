"""Pytest fixtures for plugin authors (and this project's own tests).

Enabled automatically through the ``pytest11`` entry point once assistant-builder is installed:

* ``plugin_manager``: a fresh plugin manager with the installed plugins (never a global one).
* ``register_plugin``: ``register_plugin(obj)`` adds a plugin object for one test and returns the
  resulting ``Registry``.
* ``tiny_model_dir``: a tiny randomly initialised BERT (2 layers, hidden 32) with a WordPiece
  ``tokenizer.json``, saved as a local Hugging Face model folder. Built in code, no download.
* ``write_recipe``: ``write_recipe(tmp_path, **sections)`` writes a recipe TOML using the tiny model.
"""

from __future__ import annotations

import json
import string
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest

WORDS = (
    "the a an to of in on at for and or is are be it my me you your i we please can could would what when where how "
    "set wake up alarm cancel stop timer remind reminder weather rain sun cold hot tomorrow today tonight morning "
    "evening play music song songs list add shopping buy milk eggs bread send message text tell call calendar meeting "
    "lights light turn off dim bright translate say spanish french hello hi hey thanks good minutes hours seconds "
    "am pm o clock new york london paris john mom dad"
).split()


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


def make_tiny_vocab(extra_words: Iterable[str] = ()) -> list[str]:
    """Special tokens, single characters and ## continuations, digits, and common words."""
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    chars = list(string.ascii_lowercase + string.digits + string.punctuation)
    vocab = specials + chars + [f"##{c}" for c in string.ascii_lowercase + string.digits]
    seen = set(vocab)
    for word in [*WORDS, *extra_words]:
        if word not in seen:
            seen.add(word)
            vocab.append(word)
    return vocab


def make_tiny_bert(directory: Path, *, hidden_size: int = 32, layers: int = 2, heads: int = 2, seed: int = 0,
                   max_positions: int = 128) -> Path:
    """Write a tiny random-init BERT and a matching WordPiece ``tokenizer.json`` to ``directory``."""
    import torch
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import BertConfig, BertModel

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    vocab = make_tiny_vocab()
    tokenizer = Tokenizer(models.WordPiece({token: i for i, token in enumerate(vocab)}, unk_token="[UNK]", max_input_chars_per_word=100))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", vocab.index("[CLS]")), ("[SEP]", vocab.index("[SEP]"))],
    )
    tokenizer.save(str(directory / "tokenizer.json"))
    (directory / "vocab.txt").write_text("\n".join(vocab) + "\n")
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=len(vocab), hidden_size=hidden_size, num_hidden_layers=layers, num_attention_heads=heads,
                        intermediate_size=hidden_size * 2, max_position_embeddings=max_positions, pad_token_id=0)
    BertModel(config, add_pooling_layer=False).save_pretrained(directory)
    return directory


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
    """``write_recipe(directory, **sections)`` writes ``directory/recipe.toml`` (tiny model by default)."""
    def write(directory: Path, **sections: Any) -> Path:
        data: dict[str, Any] = {"recipe_version": 1, "name": sections.pop("name", "test")}
        data["model"] = {"base": str(tiny_model_dir), "max_length": 32, **sections.pop("model", {})}
        data.update(sections)
        path = Path(directory) / "recipe.toml"
        path.write_text(recipe_toml(data))
        return path

    return write
