"""Tiny random-init encoders of many architectures, each with a real tokenizer trained in code.

``make_tiny_model(architecture, directory)`` writes a folder laid out like a hub download of that
architecture: ``config.json`` + ``model.safetensors`` (``save_pretrained`` of a 2-layer, hidden-32
random model), and a tokenizer of the architecture's own kind trained with the ``tokenizers``
library on ``corpus()`` (a few hundred short sentences written for this project), saved as
``tokenizer.json`` with the ``tokenizer_config.json`` and ``special_tokens_map.json`` a download
has. No download; about a second per model on a CPU. ``ARCHITECTURES`` names what it builds:

* WordPiece (``BertNormalizer`` + ``BertPreTokenizer``, lower-casing): ``bert``, ``distilbert``,
  ``electra`` (embedding size 16 != hidden size 32) and ``mpnet`` (``<s> </s>`` special tokens).
* Byte-level BPE (``ByteLevel``, ``add_prefix_space=False``): ``roberta`` (``<s> </s>``,
  ``RobertaProcessing`` with trimmed offsets) and ``modernbert`` (``[CLS] [SEP]``, offsets that
  keep a word's leading space, as ModernBERT's own tokenizer gives them; rotary positions and a
  16-token sliding window on its second layer).
* Unigram + ``Metaspace`` (sentencepiece style, ``▁``, offsets with the leading space):
  ``xlm-roberta`` (``<s> </s>``), ``deberta-v2`` (with its convolution layer), ``deberta-v3``
  (cased, ``[CLS] [SEP]``, relative positions only) and ``albert`` (lower-casing, embedding size 16).

``train_tokenizer(architecture)`` gives the tokenizer alone (torch-free). Used by
``tests/integration/test_architectures.py`` and the qa task's tests; imports tokenizers (and, in
``make_tiny_model``, torch and transformers) inside the functions only.
"""

from __future__ import annotations

import json
import string
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["ARCHITECTURES", "Architecture", "corpus", "make_tiny_model", "train_tokenizer"]

# -- the training text: short everyday sentences, mixed case, digits and punctuation ------------------------------

_PEOPLE = ["Clara", "Tom", "Priya", "Jonas", "Mei", "Omar", "Lucia", "Ben", "Ana", "Kofi", "Sara", "Hugo", "Ingrid", "Mateo",
           "Yuki", "Farah", "Liam", "Zoe"]
_PLACES = ["King's Lane", "Mill Street", "the harbour", "Oak Park", "the station", "Rose Hall", "the library", "North Bridge",
           "the market", "Elm Road", "the bakery", "Lakeside", "Paris", "London", "New York", "the museum", "Berlin", "the airport"]
_TIMES = ["7 am", "8:30", "noon", "6 pm", "9:15 pm", "Monday", "Friday evening", "tomorrow", "tonight", "10 o'clock",
          "next week", "in March", "at dawn", "on Sunday"]
_THINGS = ["the blue bike", "a parcel", "two tickets", "fresh bread", "the old map", "a red umbrella", "my keys", "the report",
           "some apples", "a new lamp", "the guitar", "three boxes", "warm coffee", "a birthday cake", "the green kettle",
           "four chairs", "her laptop", "a letter"]
_TEMPLATES = [
    "{p} will meet {q} at {place} at {time}.",
    "Where is {thing}? {p} left it near {place}.",
    "Please tell {p} that the bus leaves {place} at {time}.",
    "{p} bought {thing} at {place} on {time}.",
    "Can you remind {p} to call {q} {time}?",
    "The shop on {place} opens at {time}, says {p}.",
    "{p} and {q} walked from {place} to the river.",
    "I'm sure {p} didn't take {thing}!",
    "Send {thing} to {p} before {time}, please.",
    "WARNING: {place} is closed until {time}.",
    "Is it cold at {place} {time}?",
    "{p}'s sister lives at {place}; she works at {time}.",
    "Set an alarm for {time} and play some quiet music.",
    "What is the weather like in {place} {time}?",
    "Turn off the lights in the kitchen, then lock the door.",
    "{p} painted {thing} yellow because {q} asked nicely.",
    "The train from {place} was delayed by 25 minutes.",
    "Could you translate this message for {q}: \"thank you very much\"?",
    "Our team won 3-2 after a long, tiring match near {place}.",
    "Add milk, eggs and {thing} to the shopping list.",
    "{p} teaches mathematics and history at a small school.",
    "The concert at {place} starts {time}; tickets cost 40 euros.",
    "Hey {p}, did you find {thing} under the table?",
    "Rain is expected over {place} {time}, with strong winds.",
]


def corpus() -> list[str]:
    """About five hundred short sentences (names, places, times, digits, punctuation; mixed case), deterministic."""
    sentences = []
    for i in range(504):
        template = _TEMPLATES[i % len(_TEMPLATES)]
        sentences.append(template.format(p=_PEOPLE[i % len(_PEOPLE)], q=_PEOPLE[(i * 5 + 3) % len(_PEOPLE)],
                                         place=_PLACES[(i * 7) % len(_PLACES)], time=_TIMES[(i * 3) % len(_TIMES)],
                                         thing=_THINGS[(i * 11) % len(_THINGS)]))
    sentences.append(string.ascii_letters + " " + string.digits + " " + string.punctuation)  # every character is known
    return sentences


# -- what each architecture is made of ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Architecture:
    """How one architecture's tiny model and tokenizer are built.

    ``kind``: the tokenizer model ("wordpiece", "bpe" or "unigram"); ``specials``: its special
    tokens by role (``cls``, ``sep``, ``pad``, ``unk``, ``mask``), listed first in the vocabulary in
    ``order``; ``config_class`` and ``config``: the transformers config class and its arguments
    besides the sizes and token ids, which are filled in. ``roberta_pairs``: pairs as
    ``<s> A </s></s> B </s>`` (one token type); ``trim_offsets``: RoBERTa's post-processor, whose
    offsets leave out the space before a word; ``position_offset``: positions reserved before the
    first token (``model_max_length`` is that many fewer than ``max_position_embeddings``).
    """

    name: str
    kind: str
    specials: dict[str, str]
    order: tuple[str, ...]
    config_class: str
    config: dict[str, Any] = field(default_factory=dict)
    lowercase: bool = False
    roberta_pairs: bool = False
    trim_offsets: bool = False
    tokenizer_class: str = "PreTrainedTokenizerFast"
    position_offset: int = 0


_BERT_SPECIALS = {"pad": "[PAD]", "unk": "[UNK]", "cls": "[CLS]", "sep": "[SEP]", "mask": "[MASK]"}
_BERT_ORDER = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
_ROBERTA_SPECIALS = {"cls": "<s>", "pad": "<pad>", "sep": "</s>", "unk": "<unk>", "mask": "<mask>"}
_ROBERTA_ORDER = ("<s>", "<pad>", "</s>", "<unk>", "<mask>")
_SMALL_EMBEDDINGS = {"embedding_size": 16}
_DEBERTA_V3 = {"relative_attention": True, "pos_att_type": ["p2c", "c2p"], "position_biased_input": False,
               "max_relative_positions": -1, "position_buckets": 64, "norm_rel_ebd": "layer_norm", "share_att_key": True,
               "type_vocab_size": 0, "layer_norm_eps": 1e-7}

_ARCHITECTURES = (
    Architecture("bert", "wordpiece", _BERT_SPECIALS, _BERT_ORDER, "BertConfig", lowercase=True, tokenizer_class="BertTokenizer"),
    Architecture("roberta", "bpe", _ROBERTA_SPECIALS, _ROBERTA_ORDER, "RobertaConfig", {"type_vocab_size": 1},
                 roberta_pairs=True, trim_offsets=True, tokenizer_class="RobertaTokenizer", position_offset=2),
    Architecture("xlm-roberta", "unigram", _ROBERTA_SPECIALS, _ROBERTA_ORDER, "XLMRobertaConfig", {"type_vocab_size": 1},
                 roberta_pairs=True, tokenizer_class="XLMRobertaTokenizer", position_offset=2),
    Architecture("deberta-v2", "unigram", _BERT_SPECIALS, ("[PAD]", "[CLS]", "[SEP]", "[UNK]", "[MASK]"), "DebertaV2Config",
                 {**_DEBERTA_V3, "conv_kernel_size": 3, "conv_act": "gelu"}, tokenizer_class="DebertaV2Tokenizer"),
    Architecture("deberta-v3", "unigram", _BERT_SPECIALS, ("[PAD]", "[CLS]", "[SEP]", "[UNK]", "[MASK]"), "DebertaV2Config",
                 _DEBERTA_V3, tokenizer_class="DebertaV2Tokenizer"),
    Architecture("distilbert", "wordpiece", _BERT_SPECIALS, _BERT_ORDER, "DistilBertConfig", lowercase=True,
                 tokenizer_class="DistilBertTokenizer"),
    Architecture("electra", "wordpiece", _BERT_SPECIALS, _BERT_ORDER, "ElectraConfig", _SMALL_EMBEDDINGS, lowercase=True,
                 tokenizer_class="ElectraTokenizer"),
    Architecture("albert", "unigram", {"pad": "<pad>", "unk": "<unk>", "cls": "[CLS]", "sep": "[SEP]", "mask": "[MASK]"},
                 ("<pad>", "<unk>", "[CLS]", "[SEP]", "[MASK]"), "AlbertConfig", _SMALL_EMBEDDINGS, lowercase=True,
                 tokenizer_class="AlbertTokenizer"),
    Architecture("modernbert", "bpe", _BERT_SPECIALS, ("[UNK]", "[CLS]", "[SEP]", "[PAD]", "[MASK]"), "ModernBertConfig",
                 {"global_attn_every_n_layers": 2, "local_attention": 16}),
    Architecture("mpnet", "wordpiece", {"cls": "<s>", "pad": "<pad>", "sep": "</s>", "unk": "[UNK]", "mask": "<mask>"},
                 ("<s>", "<pad>", "</s>", "[UNK]", "<mask>"), "MPNetConfig", lowercase=True, roberta_pairs=True,
                 tokenizer_class="MPNetTokenizer", position_offset=2),
)
#: architecture name -> how it is built
ARCHITECTURES: dict[str, Architecture] = {a.name: a for a in _ARCHITECTURES}


# -- tokenizers ------------------------------------------------------------------------------------------------------

def train_tokenizer(architecture: str, vocab_size: int = 800) -> Any:
    """The ``tokenizers.Tokenizer`` of ``architecture``'s kind trained on ``corpus()`` (torch-free; used by ``make_tiny_model``).

    At most ``vocab_size`` entries (the small corpus gives fewer for WordPiece and Unigram), the
    special tokens first in the architecture's order, its post-processor set (``[CLS] A [SEP]`` or
    ``<s> A </s></s> B </s>``). Raises ``ValueError`` for an unknown architecture.
    """
    if architecture not in ARCHITECTURES:
        raise ValueError(f"expected an architecture among {', '.join(ARCHITECTURES)}, got {architecture!r}")
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

    spec = ARCHITECTURES[architecture]
    specials = list(spec.order)
    alphabet = sorted(set((string.ascii_lowercase if spec.lowercase else string.ascii_letters) + string.digits + string.punctuation))
    if spec.kind == "wordpiece":
        tokenizer = Tokenizer(models.WordPiece(unk_token=spec.specials["unk"], max_input_chars_per_word=100))
        tokenizer.normalizer = normalizers.BertNormalizer(lowercase=spec.lowercase)
        tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        tokenizer.decoder = decoders.WordPiece()
        trainer: Any = trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=specials, initial_alphabet=alphabet,
                                              show_progress=False)
    elif spec.kind == "bpe":
        tokenizer = Tokenizer(models.BPE())
        tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=spec.trim_offsets)
        tokenizer.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                      show_progress=False)
    elif spec.kind == "unigram":
        tokenizer = Tokenizer(models.Unigram())
        steps = [normalizers.Replace("``", '"'), normalizers.Replace("''", '"'), normalizers.NFKD(), normalizers.StripAccents(),
                 normalizers.Lowercase()] if spec.lowercase else [normalizers.NFKC()]
        tokenizer.normalizer = normalizers.Sequence([*steps, normalizers.Replace(Regex(" {2,}"), " ")])
        tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
        tokenizer.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
        trainer = trainers.UnigramTrainer(vocab_size=vocab_size, special_tokens=specials, unk_token=spec.specials["unk"],
                                          initial_alphabet=alphabet, shrinking_factor=0.75, n_sub_iterations=2,
                                          show_progress=False)
    else:  # pragma: no cover - a programming error in ARCHITECTURES
        raise ValueError(f"unknown tokenizer kind {spec.kind!r}")
    tokenizer.train_from_iterator(corpus(), trainer=trainer)
    _post_processor(tokenizer, spec)
    return tokenizer


def _post_processor(tokenizer: Any, spec: Architecture) -> None:
    from tokenizers import processors

    cls, sep = spec.specials["cls"], spec.specials["sep"]
    ids = [(cls, tokenizer.token_to_id(cls)), (sep, tokenizer.token_to_id(sep))]
    if spec.trim_offsets:  # RoBERTa's own: offsets without the leading space
        tokenizer.post_processor = processors.RobertaProcessing(ids[1], ids[0], trim_offsets=True, add_prefix_space=False)
    elif spec.roberta_pairs:
        tokenizer.post_processor = processors.TemplateProcessing(
            single=f"{cls} $A {sep}", pair=f"{cls} $A {sep} {sep} $B {sep}", special_tokens=ids)
    else:
        tokenizer.post_processor = processors.TemplateProcessing(
            single=f"{cls} $A {sep}", pair=f"{cls} $A {sep} $B:1 {sep}:1", special_tokens=ids)


def _tokenizer_configs(spec: Architecture, max_positions: int) -> dict[str, dict[str, Any]]:
    """tokenizer_config.json and special_tokens_map.json as a hub download of the architecture has them."""
    special = {f"{role}_token": token for role, token in spec.specials.items()}
    if spec.roberta_pairs:
        special.update(bos_token=spec.specials["cls"], eos_token=spec.specials["sep"])
    config: dict[str, Any] = {**special, "tokenizer_class": spec.tokenizer_class, "clean_up_tokenization_spaces": False,
                              "model_max_length": max_positions - spec.position_offset}
    if spec.kind == "wordpiece" or spec.name == "albert":
        config["do_lower_case"] = spec.lowercase
    if spec.kind == "bpe":
        config["add_prefix_space"] = False
    return {"tokenizer_config.json": config, "special_tokens_map.json": special}


# -- configs ---------------------------------------------------------------------------------------------------------

def _config(spec: Architecture, tokenizer: Any, hidden_size: int, layers: int, heads: int, max_positions: int) -> Any:
    import transformers

    config_class: Callable[..., Any] = getattr(transformers, spec.config_class)
    token_id = {role: tokenizer.token_to_id(token) for role, token in spec.specials.items()}
    sizes: dict[str, Any]
    if spec.name == "distilbert":
        sizes = {"dim": hidden_size, "n_layers": layers, "n_heads": heads, "hidden_dim": hidden_size * 2}
    else:
        sizes = {"hidden_size": hidden_size, "num_hidden_layers": layers, "num_attention_heads": heads,
                 "intermediate_size": hidden_size * 2}
    ids: dict[str, Any] = {"pad_token_id": token_id["pad"]}
    if spec.roberta_pairs or spec.name in ("albert", "modernbert"):  # configs that name their first and last tokens
        ids.update(bos_token_id=token_id["cls"], eos_token_id=token_id["sep"])
    if spec.name == "modernbert":
        ids.update(cls_token_id=token_id["cls"], sep_token_id=token_id["sep"])
    return config_class(vocab_size=tokenizer.get_vocab_size(), max_position_embeddings=max_positions, **sizes, **ids,
                        **spec.config)


def make_tiny_model(architecture: str, directory: Path, *, hidden_size: int = 32, layers: int = 2, heads: int = 2,
                    max_positions: int = 128, vocab_size: int = 800, seed: int = 0) -> Path:
    """Write a tiny random-init ``architecture`` model (one of ``ARCHITECTURES``) and its trained tokenizer to ``directory``.

    ``max_positions`` is ``max_position_embeddings``; RoBERTa-style models (``roberta``,
    ``xlm-roberta``, ``mpnet``) take two fewer tokens, as their ``tokenizer_config.json`` says.
    Returns ``directory``. Raises ``ValueError`` for an unknown architecture.
    """
    if architecture not in ARCHITECTURES:
        raise ValueError(f"expected an architecture among {', '.join(ARCHITECTURES)}, got {architecture!r}")
    import torch
    from transformers import AutoModel
    from transformers.utils import logging as hf_logging

    spec = ARCHITECTURES[architecture]
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tokenizer = train_tokenizer(architecture, vocab_size)
    tokenizer.save(str(directory / "tokenizer.json"))
    for name, content in _tokenizer_configs(spec, max_positions).items():
        (directory / name).write_text(json.dumps(content, indent=2) + "\n")
    if spec.kind == "wordpiece":  # hub folders of WordPiece models ship vocab.txt too
        vocab = sorted(tokenizer.get_vocab().items(), key=lambda item: item[1])
        (directory / "vocab.txt").write_text("".join(token + "\n" for token, _ in vocab))
    torch.manual_seed(seed)
    config = _config(spec, tokenizer, hidden_size, layers, heads, max_positions)
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # no "Writing model shards" bar on stderr
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        AutoModel.from_config(config).save_pretrained(directory)
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()
    return directory
