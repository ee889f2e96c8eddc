"""Saving a task model as a Hugging Face model folder, and loading it back. Imports torch.

A saved model folder is a standard transformers model folder, loadable without assistant-builder:

* ``model.safetensors``: the encoder's weights under its ``base_model_prefix`` (``bert.``,
  ``roberta.``...) and each head's under its own name (``classifier.``, ``qa_outputs.``): the key
  names of transformers' ``*ForTokenClassification`` / ``*ForQuestionAnswering``.
* ``config.json``: the encoder's config plus ``architectures``, ``id2label``/``label2id`` and task
  keys; ``auto_map`` where the head needs custom code written beside it (the classification
  task's pooled head, ``modeling_pooled_encoder.py``).
* ``tokenizer_config.json`` and ``special_tokens_map.json``: copied from the base model, or derived
  from its ``tokenizer.json`` when it has none, so ``AutoTokenizer`` (and so ``pipeline``) gets the
  special tokens, lower-casing and maximum length right. The engine writes ``tokenizer.json``.

``save_model_folder`` writes one; ``load_model_folder`` + ``load_head_weights`` read it back
strictly. Two other layouts load too: the built-in tasks' earlier one (the encoder folder alone
plus ``*_head.safetensors`` and ``*_head.json``: ``read_legacy_head_config``,
``load_legacy_head``), and an encoder folder with all heads in one safetensors file beside it
(``save_heads_file``, ``load_heads_file``). Every file is written atomically; no pickles.
"""

from __future__ import annotations

import copy
import json
import logging
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from assistant_builder.errors import ModelError
from assistant_builder.toolkit.encoder import encoder_prefix, pooler_kwargs, quiet_transformers

__all__ = ["WEIGHTS_FILE", "CONFIG_FILE", "TOKENIZER_CONFIG_FILE", "SPECIAL_TOKENS_FILE", "task_weights", "set_labels", "hf_config",
           "config_dict", "standard_class", "task_config", "save_model_folder", "bundle_files", "tokenizer_files",
           "load_model_folder", "load_head_weights", "read_legacy_head_config", "load_legacy_head", "save_heads_file",
           "load_heads_file"]

logger = logging.getLogger(__name__)

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
TOKENIZER_CONFIG_FILE = "tokenizer_config.json"
SPECIAL_TOKENS_FILE = "special_tokens_map.json"
#: tokenizer_config.json keys that name files or code of the folder they came from
_FOREIGN_TOKENIZER_KEYS = ("name_or_path", "tokenizer_file", "special_tokens_map_file", "auto_map")
#: special tokens recognised in a tokenizer.json when the base model has no special_tokens_map.json
_SPECIAL_TOKEN_ROLES = {
    "[CLS]": ("cls_token",), "[SEP]": ("sep_token",), "[PAD]": ("pad_token",), "[UNK]": ("unk_token",),
    "[MASK]": ("mask_token",), "<s>": ("bos_token", "cls_token"), "</s>": ("eos_token", "sep_token"),
    "<pad>": ("pad_token",), "<unk>": ("unk_token",), "<mask>": ("mask_token",),
}
#: model types whose first position comes after pad_token_id + 1 reserved ones
_OFFSET_POSITIONS = {"roberta", "xlm-roberta", "xlm-roberta-xl", "roberta-prelayernorm", "camembert", "longformer", "mpnet",
                     "data2vec-text"}


# ---------------------------------------------------------------------------------------------
# Saving
# ---------------------------------------------------------------------------------------------


def task_weights(encoder: nn.Module, heads: Mapping[str, nn.Module]) -> dict[str, torch.Tensor]:
    """All weights under their task-model names, on CPU, one storage each (safetensors refuses shared ones)."""
    prefix = encoder_prefix(encoder)
    named = [(f"{prefix}.{k}", v) for k, v in encoder.state_dict().items()]
    named += [(f"{name}.{k}", v) for name, head in heads.items() for k, v in head.state_dict().items()]
    tensors: dict[str, torch.Tensor] = {}
    storages: set[int] = set()
    for key, value in named:
        value = value.detach().to("cpu").contiguous()
        storage = value.untyped_storage().data_ptr()
        if storage in storages:
            value = value.clone()
        storages.add(value.untyped_storage().data_ptr())
        tensors[key] = value
    return tensors


def set_labels(encoder: nn.Module, labels: Sequence[str]) -> None:
    """Record the label names in the (live) encoder config, as transformers' task models do."""
    encoder.config.id2label = dict(enumerate(labels))
    encoder.config.label2id = {label: i for i, label in enumerate(labels)}


def hf_config(encoder: nn.Module, *, architecture: str | None, updates: Mapping[str, Any] | None = None,
              auto_map: Mapping[str, str] | None = None) -> Any:
    """A copy of the encoder's config describing the task model (``architectures``, task keys, ``auto_map``)."""
    config = copy.deepcopy(encoder.config)
    config.architectures = [architecture] if architecture else None
    for key, value in (updates or {}).items():
        setattr(config, key, value)
    if auto_map:
        config.auto_map = dict(auto_map)
    else:  # the base model's own remote code (if any) is not in the saved folder
        vars(config).pop("auto_map", None)
    return config


def config_dict(config: Any) -> dict[str, Any]:
    """What ``config.json`` holds for ``config`` (as ``save_pretrained`` writes it)."""
    return json.loads(config.to_json_string(use_diff=True))


def standard_class(config: Any, mapping: str, tensors: Mapping[str, torch.Tensor]) -> type | None:
    """transformers' own class for the head (e.g. ``BertForTokenClassification``) if its weights are exactly ``tensors``.

    ``mapping`` names an auto mapping (``MODEL_FOR_TOKEN_CLASSIFICATION_MAPPING``). The class is
    built on the meta device, so the check costs no memory.
    """
    from transformers.models.auto import modeling_auto

    try:
        model_class = getattr(modeling_auto, mapping)[type(config)]
    except KeyError:
        return None
    try:
        with torch.device("meta"):
            reference = model_class(copy.deepcopy(config))
    except Exception as exc:  # noqa: BLE001 - any failure means "not known to match"
        logger.debug("could not build %s on the meta device: %s", model_class.__name__, exc)
        return None
    expected = {k: tuple(v.shape) for k, v in reference.state_dict().items()}
    return model_class if expected == {k: tuple(v.shape) for k, v in tensors.items()} else None


def task_config(encoder: nn.Module, heads: Mapping[str, nn.Module], *, mapping: str | None = None,
                architecture: str | None = None, updates: Mapping[str, Any] | None = None,
                auto_map: Mapping[str, str] | None = None, tensors: Mapping[str, torch.Tensor] | None = None) -> Any:
    """The config.json of the task model (see ``hf_config``).

    With ``mapping``, ``architectures`` names transformers' standard class for this head when its
    weights match ours exactly (else ``architecture``, a class of the folder's own code, if any).
    """
    config = hf_config(encoder, architecture=architecture, updates=updates, auto_map=auto_map)
    if mapping is not None:
        standard = standard_class(config, mapping, tensors if tensors is not None else task_weights(encoder, heads))
        if standard is not None:
            config.architectures = [standard.__name__]
        else:
            logger.warning("transformers has no class in %s matching this %s model with heads %s; "
                           "the saved folder loads with assistant-builder only", mapping,
                           getattr(config, "model_type", "?"), ", ".join(heads))
    return config


def save_model_folder(directory: Path, encoder: nn.Module, heads: Mapping[str, nn.Module], *, mapping: str | None = None,
                      architecture: str | None = None, updates: Mapping[str, Any] | None = None,
                      auto_map: Mapping[str, str] | None = None, code_files: Mapping[str, str] | None = None,
                      tokenizer_files: Mapping[str, dict[str, Any]] | None = None) -> None:
    """Write encoder + ``heads`` to ``directory`` as a Hugging Face model folder (see the module docstring)."""
    from safetensors.torch import save_file

    from assistant_builder.atomic import atomic_path, atomic_write_json, atomic_write_text

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tensors = task_weights(encoder, heads)
    config = task_config(encoder, heads, mapping=mapping, architecture=architecture, updates=updates, auto_map=auto_map,
                         tensors=tensors)
    with atomic_path(directory / WEIGHTS_FILE) as tmp:
        save_file(tensors, str(tmp), metadata={"format": "pt"})
    atomic_write_json(directory / CONFIG_FILE, config_dict(config))
    for name, text in (code_files or {}).items():
        atomic_write_text(directory / name, text)
    for name, content in (tokenizer_files or {}).items():
        atomic_write_json(directory / name, content)


def bundle_files(config: Any, tokenizer_files: Mapping[str, dict[str, Any]] | None) -> dict[str, dict[str, Any]]:
    """``config.json`` (without ``auto_map``: no code travels with an ONNX graph) and the tokenizer configs.

    What Optimum's ``ORTModelFor*`` and ``AutoTokenizer`` read from an exported bundle.
    """
    content = config_dict(config)
    content.pop("auto_map", None)
    return {CONFIG_FILE: content, **{name: dict(value) for name, value in (tokenizer_files or {}).items()}}


# ---------------------------------------------------------------------------------------------
# Tokenizer configuration
# ---------------------------------------------------------------------------------------------


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def tokenizer_files(source: Path) -> dict[str, dict[str, Any]]:
    """``tokenizer_config.json`` and ``special_tokens_map.json`` for a model fine-tuned from ``source``.

    Copied from ``source`` when it has them (minus keys naming its own files); otherwise derived
    from its ``tokenizer.json`` (special tokens, lower-casing) and ``config.json`` (maximum length).
    Reads local files only.
    """
    source = Path(source)
    model_config = _read_json(source / CONFIG_FILE) or {}
    tokenizer_config = _read_json(source / TOKENIZER_CONFIG_FILE)
    special = _read_json(source / SPECIAL_TOKENS_FILE)
    derived_special, lowercase = _from_tokenizer_json(_read_json(source / "tokenizer.json"))
    if not isinstance(special, dict):
        special = derived_special
    if not isinstance(tokenizer_config, dict):
        tokenizer_config = {**special}
        if lowercase is not None:
            tokenizer_config["do_lower_case"] = lowercase
    tokenizer_config = {k: v for k, v in tokenizer_config.items() if k not in _FOREIGN_TOKENIZER_KEYS}
    limit = tokenizer_config.get("model_max_length")
    positions = model_config.get("max_position_embeddings")
    if not isinstance(limit, int) or limit > 1_000_000:  # absent, or transformers' "no limit" placeholder
        if isinstance(positions, int) and positions > 0:
            # RoBERTa-style models reserve pad_token_id + 1 positions before the first token
            offset = (model_config.get("pad_token_id") or 0) + 1 if model_config.get("model_type") in _OFFSET_POSITIONS else 0
            tokenizer_config["model_max_length"] = positions - offset
    files = {TOKENIZER_CONFIG_FILE: tokenizer_config}
    if special:
        files[SPECIAL_TOKENS_FILE] = special
    return files



def _from_tokenizer_json(data: Any) -> tuple[dict[str, str], bool | None]:
    """Special tokens by role (``cls_token``...) and the normaliser's lower-casing, from tokenizer.json.

    A token counts when it is an added special token, a special token of the post-processor or
    (for files built without added tokens) simply in the vocabulary.
    """
    if not isinstance(data, dict):
        return {}, None
    found = {t.get("content") for t in data.get("added_tokens") or [] if isinstance(t, dict) and t.get("special")}
    post = data.get("post_processor")
    if isinstance(post, dict) and isinstance(post.get("special_tokens"), dict):
        found.update(post["special_tokens"])
    vocab = (data.get("model") or {}).get("vocab") if isinstance(data.get("model"), dict) else None
    if isinstance(vocab, dict):
        found.update(token for token in _SPECIAL_TOKEN_ROLES if token in vocab)
    elif isinstance(vocab, list):
        found.update(entry[0] for entry in vocab if isinstance(entry, list) and entry and entry[0] in _SPECIAL_TOKEN_ROLES)
    special: dict[str, str] = {}
    for token, roles in _SPECIAL_TOKEN_ROLES.items():
        if token in found:
            for role in roles:
                special.setdefault(role, token)
    normalizer = data.get("normalizer")
    steps = normalizer.get("normalizers", [normalizer]) if isinstance(normalizer, dict) else []
    lowercase = None
    for step in steps:
        if isinstance(step, dict) and step.get("type") == "BertNormalizer":
            lowercase = bool(step.get("lowercase"))
        elif isinstance(step, dict) and step.get("type") == "Lowercase":
            lowercase = True
    return special, lowercase


# ---------------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------------


def load_model_folder(directory: Path) -> tuple[nn.Module, dict[str, torch.Tensor], Any]:
    """The encoder (weights loaded strictly), the head tensors by key, and the config of a saved folder."""
    from safetensors.torch import load_file
    from transformers import AutoConfig, AutoModel

    quiet_transformers()
    directory = Path(directory)
    try:
        config = AutoConfig.from_pretrained(str(directory))
        encoder = AutoModel.from_config(config, **pooler_kwargs(config))
        tensors = load_file(str(directory / WEIGHTS_FILE))
    except (OSError, ValueError) as exc:
        raise ModelError(f"{directory}: could not load the saved model: {exc}",
                         hint="the folder needs config.json and model.safetensors as `builder run` writes them") from exc
    prefix = encoder_prefix(encoder) + "."
    encoder_state = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
    try:
        encoder.load_state_dict(encoder_state, strict=True)
    except RuntimeError as exc:
        raise ModelError(f"{directory / WEIGHTS_FILE}: the encoder weights (prefix '{prefix}') do not fit a "
                         f"{type(encoder).__name__}: {_first_line(exc)}", hint="the folder may come from another model") from exc
    return encoder, {k: v for k, v in tensors.items() if not k.startswith(prefix)}, config


def load_head_weights(head: nn.Module, name: str, tensors: Mapping[str, torch.Tensor], directory: Path,
                      weights_file: str = WEIGHTS_FILE) -> None:
    """Load the weights of ``head`` (saved under ``name.``) strictly; any other tensor in ``tensors`` is an error.

    ``tensors`` are the head tensors of ``load_model_folder`` (or of ``weights_file``, for messages).
    """
    prefix = name + "."
    try:
        head.load_state_dict({k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}, strict=True)
    except RuntimeError as exc:
        raise ModelError(f"{directory / weights_file}: the '{name}' head weights do not fit: {_first_line(exc)}") from exc
    unknown = sorted(k for k in tensors if not k.startswith(prefix))
    if unknown:
        raise ModelError(f"{directory / weights_file}: unexpected weights {unknown[:3]} beside the encoder and '{name}'")


def _first_line(exc: BaseException) -> str:
    return re.sub(r"\s+", " ", str(exc))[:300]


def read_legacy_head_config(directory: Path, head_config_file: str) -> dict[str, Any] | None:
    """The head config of a folder saved by an earlier version (encoder + separate head files), else ``None``."""
    path = Path(directory) / head_config_file
    return json.loads(path.read_text()) if path.is_file() else None


def load_legacy_head(head: nn.Module, directory: Path, head_file: str) -> None:
    """Load head weights from an earlier version's ``*_head.safetensors`` (safetensors: no unpickling)."""
    from safetensors.torch import load_file

    head.load_state_dict(load_file(str(Path(directory) / head_file)))


# ---------------------------------------------------------------------------------------------
# Heads in a file of their own, beside an encoder folder
# ---------------------------------------------------------------------------------------------


def save_heads_file(path: Path, heads: Mapping[str, nn.Module]) -> None:
    """Write the weights of ``heads`` to the safetensors file ``path``, each under ``name.`` (atomically).

    With ``encoder.save_pretrained(folder)`` beside it, a layout whose encoder loads with
    ``AutoModel`` alone; ``load_heads_file`` reads the heads back.
    """
    from safetensors.torch import save_file

    from assistant_builder.atomic import atomic_path

    tensors = {f"{name}.{key}": value.detach().cpu().contiguous() for name, head in heads.items() for key, value in head.state_dict().items()}
    with atomic_path(Path(path)) as tmp:
        save_file(tensors, str(tmp))


def load_heads_file(path: Path, heads: Mapping[str, nn.Module]) -> None:
    """Load each of ``heads`` strictly from the safetensors file ``path`` written by ``save_heads_file``."""
    from safetensors.torch import load_file

    path = Path(path)
    try:
        tensors = load_file(str(path))
    except (OSError, ValueError) as exc:
        raise ModelError(f"{path}: could not read the head weights: {exc}") from exc
    for name, head in heads.items():
        load_head_weights(head, name, {k: v for k, v in tensors.items() if k.startswith(name + ".")}, path.parent, path.name)
