"""Optimiser and learning-rate schedule shared by the trainers (imports torch; load lazily)."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

_NO_DECAY = ("bias", "LayerNorm.weight", "layer_norm.weight", "LayerNorm.bias", "norm.weight")


def parameter_groups(model: nn.Module, head_modules: Iterable[str], learning_rate: float, head_learning_rate: float,
                     weight_decay: float) -> list[dict]:
    """AdamW groups: encoder vs head learning rate, and no weight decay on biases and norms.

    Only parameters with ``requires_grad`` are included (LoRA freezes the encoder).
    """
    heads = tuple(head_modules)
    groups: dict[tuple[bool, bool], list[nn.Parameter]] = {}
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            continue
        parts = name.split(".")
        is_head = any(h in parts for h in heads)
        decays = not any(name.endswith(suffix) for suffix in _NO_DECAY) and parameter.ndim > 1
        groups.setdefault((is_head, decays), []).append(parameter)
    return [
        {"params": params, "lr": head_learning_rate if is_head else learning_rate,
         "weight_decay": weight_decay if decays else 0.0, "name": f"{'head' if is_head else 'body'}{'' if decays else '_no_decay'}"}
        for (is_head, decays), params in sorted(groups.items())
    ]


def make_optimizer(groups: list[dict], device: torch.device) -> torch.optim.Optimizer:
    """AdamW with the fused kernel (CPU and CUDA; several times faster than the foreach one on CPU),
    falling back to foreach where this torch build has no fused kernel for the device."""
    try:
        return torch.optim.AdamW(groups, betas=(0.9, 0.999), eps=1e-8, fused=True)
    except (RuntimeError, TypeError):
        return torch.optim.AdamW(groups, betas=(0.9, 0.999), eps=1e-8, foreach=True)


def warmup_linear_schedule(optimizer: torch.optim.Optimizer, warmup_steps: int, total_steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warmup from 0 to the peak over ``warmup_steps``, then linear decay to 0 at ``total_steps``."""

    def factor(step: int) -> float:
        if warmup_steps and step < warmup_steps:
            return (step + 1) / warmup_steps
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
