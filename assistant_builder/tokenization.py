"""Tokenizer loading. Training, verification and the runtime all encode with the same
``tokenizers.Tokenizer`` (from ``tokenizer.json``), so exported models see exactly the inputs the
model was trained on.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from assistant_builder.errors import ModelError

if TYPE_CHECKING:  # pragma: no cover
    from tokenizers import Tokenizer


def prepare_tokenizer(tokenizer: Tokenizer, max_length: int) -> Tokenizer:
    """Disable the file's padding (some ship padding to 128) and truncate at ``max_length``."""
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=max_length)
    return tokenizer


def load_tokenizer(model_dir: Path, max_length: int) -> Tokenizer:
    """Load the fast tokenizer of ``model_dir``, converting a slow one if there is no tokenizer.json."""
    from tokenizers import Tokenizer

    path = Path(model_dir) / "tokenizer.json"
    if path.is_file():
        tokenizer = Tokenizer.from_file(str(path))
    else:
        try:
            from transformers import AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(str(model_dir), use_fast=True).backend_tokenizer
        except Exception as exc:  # noqa: BLE001
            raise ModelError(f"could not load a tokenizer from {model_dir}: {exc}", hint="the folder needs tokenizer.json or vocab.txt") from exc
    return prepare_tokenizer(tokenizer, max_length)


def pad_token_id(tokenizer: Tokenizer) -> int:
    """Id of the tokenizer's padding token ([PAD] or <pad>), 0 if it has none."""
    for token in ("[PAD]", "<pad>"):
        token_id = tokenizer.token_to_id(token)
        if token_id is not None:
            return token_id
    return 0
