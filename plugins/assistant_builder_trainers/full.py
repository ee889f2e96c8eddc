"""The ``full`` trainer: every weight of the model is fine-tuned."""

from __future__ import annotations

from assistant_builder.contracts import NoOptions, Trainer, TrainingJob, TrainingOutcome
from assistant_builder.hookspecs import hookimpl


class FullTrainer(Trainer):
    """Full fine-tuning with AdamW, warmup + linear decay, on HF Accelerate."""

    name = "full"
    description = "full fine-tuning of every weight (AdamW, warmup + linear decay)"
    Options = NoOptions
    default_learning_rate = 1e-4

    def train(self, job: TrainingJob) -> TrainingOutcome:
        from assistant_builder_trainers.loop import run_training

        learning_rate = job.settings.learning_rate or self.default_learning_rate
        return run_training(job, job.model, learning_rate)


@hookimpl
def register_trainers(register):  # type: ignore[no-untyped-def]
    register(FullTrainer)
