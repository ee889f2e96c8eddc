"""The ``lora`` trainer: low-rank adapters (peft) on the encoder; the task head trains fully.

Adapters are merged into the base weights after training, so exports are plain models.
"""

from __future__ import annotations

from pydantic import Field

from assistant_builder.contracts import ComponentOptions, Trainer, TrainingJob, TrainingOutcome
from assistant_builder.hookspecs import hookimpl


class LoraOptions(ComponentOptions):
    r: int = Field(16, ge=1, le=1024, description="adapter rank")
    alpha: int = Field(32, ge=1, description="scaling numerator (scale = alpha / r)")
    dropout: float = Field(0.0, ge=0.0, lt=1.0, description="dropout on the adapter input (each adapter then copies its "
                                                             "input: 0.05 measured 30% slower on CPU, see bench/RESULTS.md)")
    target_modules: list[str] | None = Field(None, description="names of the linear layers that get adapters; default: the "
                                             "model's own choice (its lora_target_modules attribute: the attention and MLP "
                                             "projections of a causal LM), else the encoder's query, key, value and dense layers")


#: the encoder layers that get adapters when neither the recipe nor the model names others (BERT-family names)
ENCODER_TARGET_MODULES = ("query", "key", "value", "dense")


def default_target_modules(model: object, options: LoraOptions) -> list[str]:
    """``options.target_modules``, else the model's ``lora_target_modules`` attribute, else ``ENCODER_TARGET_MODULES``."""
    if options.target_modules is not None:
        return list(options.target_modules)
    return list(getattr(model, "lora_target_modules", None) or ENCODER_TARGET_MODULES)


class LoraTrainer(Trainer):
    """LoRA fine-tuning: the encoder is frozen except for adapters; the head is trained in full."""

    name = "lora"
    description = "LoRA adapters (peft) on the encoder, head trained in full, merged for export"
    Options = LoraOptions
    default_learning_rate = 2e-3

    def train(self, job: TrainingJob) -> TrainingOutcome:
        from peft import LoraConfig, get_peft_model

        from assistant_builder_trainers.loop import run_training

        options: LoraOptions = job.options  # type: ignore[assignment]
        heads = list(getattr(job.model, "head_modules", ()))
        config = LoraConfig(r=options.r, lora_alpha=options.alpha, lora_dropout=options.dropout,
                            target_modules=default_target_modules(job.model, options), modules_to_save=heads or None)
        peft_model = get_peft_model(job.model, config)
        peft_model.head_modules = tuple(heads)
        learning_rate = job.settings.learning_rate or self.default_learning_rate
        return run_training(job, peft_model, learning_rate, finalize=lambda m: m.merge_and_unload())


@hookimpl
def register_trainers(register):  # type: ignore[no-untyped-def]
    register(LoraTrainer)
