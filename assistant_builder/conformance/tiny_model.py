"""A tiny random-init BERT (2 layers, hidden 32) with a WordPiece tokenizer, built in code.

Used by the conformance suite, ``builder plugins check`` and the ``tiny_model_dir`` test fixture:
no download, a few hundred kilobytes, seconds to train on a CPU. Imports torch and transformers
inside ``make_tiny_bert`` only.
"""

from __future__ import annotations

import string
from collections.abc import Iterable
from pathlib import Path

WORDS = (
    "the a an to of in on at for and or is are be it my me you your i we please can could would what when where how "
    "set wake up alarm cancel stop timer remind reminder weather rain sun cold hot tomorrow today tonight morning "
    "evening play music song songs list add shopping buy milk eggs bread send message text tell call calendar meeting "
    "lights light turn off dim bright translate say spanish french hello hi hey thanks good minutes hours seconds "
    "am pm o clock new york london paris john mom dad"
).split()


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
                   max_positions: int = 128, extra_words: Iterable[str] = ()) -> Path:
    """Write a tiny random-init BERT and a matching WordPiece ``tokenizer.json`` to ``directory``.

    ``extra_words`` join the vocabulary: e.g. the characters of a Chinese text, for a
    bert-base-chinese-style model with one token per character (the normaliser splits CJK characters).
    """
    import torch
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import BertConfig, BertModel

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    vocab = make_tiny_vocab(extra_words)
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
    from transformers.utils import logging as hf_logging

    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # no "Writing model shards" bar on stderr
    try:
        BertModel(config, add_pooling_layer=False).save_pretrained(directory)
    finally:
        if bars:
            hf_logging.enable_progress_bar()
    return directory
