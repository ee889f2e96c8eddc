"""Shared by the task models: load a pretrained encoder, save/load encoder + task head.

A saved model folder holds the encoder in Hugging Face format (loadable with ``AutoModel``), the
head's weights as safetensors and a small JSON describing the head. Imports torch; only the
task ``model.py`` modules import this.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from torch import nn

#: encoders whose optional (untrained for sentence encoders) pooler is left out
POOLER_MODEL_TYPES = {"bert", "roberta", "xlm-roberta", "camembert"}


def load_encoder(directory: Path) -> nn.Module:
    """The pretrained encoder in ``directory`` (without its pooler where it has one), quietly."""
    from transformers import AutoModel
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        model_type = json.loads((Path(directory) / "config.json").read_text()).get("model_type", "")
    except (OSError, ValueError):
        model_type = ""
    if model_type in POOLER_MODEL_TYPES:
        return AutoModel.from_pretrained(str(directory), add_pooling_layer=False)
    return AutoModel.from_pretrained(str(directory))


def save_encoder_and_head(encoder: nn.Module, head: nn.Module, directory: Path, head_file: str, head_config_file: str,
                          head_config: dict[str, Any], labels: list[str] | None = None) -> None:
    """Save ``encoder`` (Hugging Face format, with ``id2label`` when ``labels`` are given) and ``head``."""
    from safetensors.torch import save_file

    from assistant_builder.atomic import atomic_path, atomic_write_json

    directory = Path(directory)
    if labels is not None:
        encoder.config.id2label = dict(enumerate(labels))
        encoder.config.label2id = {label: i for i, label in enumerate(labels)}
    encoder.save_pretrained(directory)
    with atomic_path(directory / head_file) as tmp:
        save_file({k: v.detach().cpu().contiguous() for k, v in head.state_dict().items()}, str(tmp))
    atomic_write_json(directory / head_config_file, head_config)


def read_head_config(directory: Path, head_config_file: str) -> dict[str, Any]:
    return json.loads((Path(directory) / head_config_file).read_text())


def load_head(head: nn.Module, directory: Path, head_file: str) -> None:
    """Load head weights written by ``save_encoder_and_head`` (safetensors: no unpickling)."""
    from safetensors.torch import load_file

    head.load_state_dict(load_file(str(Path(directory) / head_file)))
