"""What the ``generation`` task needs to know about its base model before any data is read.

``check_causal_lm`` refuses, with a ``ModelError`` naming the folder, a model that is not a causal
language model (an encoder such as the bundled MiniLM) and a ``model.max_length`` beyond its
positions. ``model_settings`` reads the chat template, special tokens and end-of-sequence ids the
run then keeps in its task options (so the bundle's runtime formats prompts exactly as training
did). Imports transformers inside ``check_causal_lm`` only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from assistant_builder.errors import ModelError
from assistant_builder.jsonfile import read_json_object

#: config keys that hold a causal LM's number of positions, by family
POSITION_KEYS = ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length")


def check_causal_lm(directory: Path, max_length: int) -> None:
    """Raise ``ModelError`` unless ``directory`` holds a causal LM that takes ``max_length`` tokens."""
    from transformers import AutoConfig
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    from assistant_builder.toolkit.encoder import quiet_transformers

    quiet_transformers()
    directory = Path(directory)
    try:
        config = AutoConfig.from_pretrained(directory)
    except Exception as error:  # noqa: BLE001 - an unreadable or unknown config.json: said in words
        raise ModelError(f"{directory / 'config.json'}: cannot be read as a Hugging Face model config ({error})",
                         hint="model.base must be a causal LM folder with config.json, the weights and tokenizer.json") from error
    architectures = list(getattr(config, "architectures", None) or [])
    if config.model_type not in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES or (architectures and not any(
            a.endswith(("ForCausalLM", "LMHeadModel")) for a in architectures)):
        found = f"model_type '{config.model_type}'" + (f" ({', '.join(architectures)})" if architectures else "")
        raise ModelError(f"model.base {directory}: the generation task needs a causal (decoder) language model, found {found}",
                         hint="use a decoder such as smollm2-135m-instruct (bundled), SmolLM2, Qwen2.5, Llama or Phi; "
                              "encoders such as MiniLM fit the classification, ner and qa tasks")
    if not (directory / "tokenizer.json").is_file():
        raise ModelError(f"model.base {directory}: no tokenizer.json (a fast tokenizer) next to the model",
                         hint="save the tokenizer with AutoTokenizer.from_pretrained(...).save_pretrained(folder)")
    positions = next((getattr(config, key) for key in POSITION_KEYS if isinstance(getattr(config, key, None), int)), None)
    if positions is not None and max_length > positions:
        raise ModelError(f"model.max_length = {max_length}: the model takes at most {positions} tokens "
                         f"({directory / 'config.json'}: {config.model_type})", hint=f"set model.max_length to {positions} or less")


def end_of_sequence_ids(directory: Path, eos_token: str | None, tokenizer: Any | None = None) -> list[int]:
    """The ids that end an answer: ``generation_config.json``'s ``eos_token_id`` (an int or a list),
    then the id of the tokenizer's ``eos_token``; de-duplicated, in that order."""
    ids: list[int] = []
    declared = read_json_object(Path(directory) / "generation_config.json").get("eos_token_id")
    for value in declared if isinstance(declared, list) else [declared]:
        if isinstance(value, int) and value not in ids:
            ids.append(value)
    if eos_token and tokenizer is None and (Path(directory) / "tokenizer.json").is_file():
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(Path(directory) / "tokenizer.json"))
    if eos_token and tokenizer is not None:
        token_id = tokenizer.token_to_id(eos_token)
        if token_id is not None and token_id not in ids:
            ids.append(token_id)
    return ids
