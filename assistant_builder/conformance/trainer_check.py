"""A trainer trains the reference task's tiny sentence classifier for one short epoch, reports through the
callbacks, returns a usable ``TrainingOutcome``, and stops at once when ``stop_event`` is set.
"""

from __future__ import annotations

import threading
from typing import Any

from assistant_builder.callbacks import Callback, CallbackList
from assistant_builder.conformance.bench import TaskBench, Workspace
from assistant_builder.conformance.results import Recorder, expect
from assistant_builder.contracts import Trainer, TrainingJob, TrainingOutcome


class EventRecorder(Callback):
    """Counts the events a trainer reports."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def __getattribute__(self, name: str) -> Any:
        if name.startswith("on_"):
            counts = object.__getattribute__(self, "counts")
            return lambda event: counts.__setitem__(name, counts.get(name, 0) + 1)
        return object.__getattribute__(self, name)


def make_job(bench: TaskBench, trainer: Trainer, work: Any, *, stop: bool = False, epochs: int = 1) -> tuple[TrainingJob, EventRecorder]:
    """A small CPU job: one epoch of batches of 4 over the sample data, evaluated on its validation set."""
    from assistant_builder.engine.torch_runner import torch_runner
    from assistant_builder.inference import run_features
    from assistant_builder.recipe.schema import TrainSection

    task, data = bench.task, bench.data

    def evaluate(model: Any) -> dict[str, float]:
        outputs = run_features(torch_runner(model, task.output_names), bench.valid_features, bench.pad_id, task.output_names,
                               task.sequence_outputs)
        predictions = task.decode(outputs, bench.valid_features, data.validation, data.labels, bench.options)
        return task.evaluate(predictions, data.validation, data.labels).metrics

    events = EventRecorder()
    settings = TrainSection(epochs=epochs, batch_size=4, seed=0, device="cpu", precision="fp32", warmup_ratio=0.0,
                            early_stopping_patience=0, keep_checkpoints=1)
    stop_event = threading.Event()
    if stop:
        stop_event.set()
    job = TrainingJob(model=bench.build_model(), train_features=bench.train_features,
                      collate=lambda features: task.collate(features, bench.pad_id), evaluate=evaluate, settings=settings,
                      options=trainer.Options(), metric=task.primary_metric, checkpoint_dir=work / "checkpoints",
                      callbacks=CallbackList([events]), stop_event=stop_event)
    return job, events


def check_trainer(recorder: Recorder, trainer_class: type[Trainer], workspace: Workspace) -> None:
    state: dict[str, Any] = {}

    def setup() -> str:
        state["bench"] = workspace.reference_bench()
        return f"{len(state['bench'].train_features)} training examples, batch size 4, 1 epoch on CPU"

    def train() -> str:
        import torch

        job, events = make_job(state["bench"], trainer_class(), workspace.scratch(f"trainer-{trainer_class.name}"))
        before = {name: value.detach().clone() for name, value in job.model.state_dict().items()}
        outcome = trainer_class().train(job)
        expect(isinstance(outcome, TrainingOutcome), f"train() must return a contracts.TrainingOutcome, got {type(outcome).__name__}")
        expect(not outcome.interrupted, "the outcome says interrupted although stop_event was never set")
        expect(outcome.global_step >= 1 and outcome.epochs_run >= 1,
               f"expected at least one step and one epoch, got global_step={outcome.global_step}, epochs_run={outcome.epochs_run}")
        model = outcome.model
        expect(isinstance(model, torch.nn.Module), f"outcome.model must be a torch.nn.Module, got {type(model).__name__}")
        expect(not model.training, "outcome.model must be in eval mode")
        devices = {p.device.type for p in model.parameters()}
        expect(devices == {"cpu"}, f"outcome.model must be on the CPU (exporters expect it there), found {sorted(devices)}")
        after = model.state_dict()
        changed = [n for n, v in before.items() if n in after and v.shape == after[n].shape and not torch.equal(v, after[n].cpu())]
        expect(changed, "training changed no weight of the model the job handed over (or returned another model)")
        with torch.no_grad():
            outputs = model(**state["bench"].batch(state["bench"].valid_features, targets=False))
        expect("logits" in outputs, f"outcome.model must be the task's model (adapters merged); its forward() returned {sorted(outputs)}")
        state["outcome"], state["events"], state["metric"] = outcome, events, job.metric
        return f"{outcome.global_step} step(s), {len(changed)} tensors changed"

    def callbacks() -> str:
        counts = state["events"].counts
        needed = ("on_train_start", "on_step_end", "on_eval_end")
        missing = [name for name in needed if not counts.get(name)]
        expect(not missing, f"expected reports through job.callbacks ({', '.join(needed)}); never called: {', '.join(missing)} "
                            f"(called: {', '.join(f'{k} x{v}' for k, v in sorted(counts.items())) or 'none'})")
        return ", ".join(f"{k} x{v}" for k, v in sorted(counts.items()))

    def best_metrics() -> str:
        outcome, metric = state["outcome"], state["metric"]
        expect(metric in outcome.best_metrics, f"best_metrics must hold the job's metric '{metric}' (from job.evaluate), "
                                               f"got {sorted(outcome.best_metrics)}")
        expect(outcome.best_epoch >= 1, f"best_epoch must be the (1-based) epoch of the best model, got {outcome.best_epoch}")
        return f"{metric}={outcome.best_metrics[metric]:.3f} at epoch {outcome.best_epoch}"

    def stop_event() -> str:
        job, _ = make_job(state["bench"], trainer_class(), workspace.scratch(f"trainer-{trainer_class.name}-stop"), stop=True, epochs=3)
        outcome = trainer_class().train(job)
        expect(isinstance(outcome, TrainingOutcome), f"train() must return a TrainingOutcome when stopped, got {type(outcome).__name__}")
        expect(outcome.interrupted, "with job.stop_event set before training, the outcome must have interrupted=True")
        expect(outcome.global_step <= 1, f"with job.stop_event set, training must stop at the next step; it ran {outcome.global_step} steps")
        return f"stopped after {outcome.global_step} step(s)"

    recorder.run_steps([("training setup", setup), ("train", train)])
    for name, check, needs in (("callbacks", callbacks, "outcome"), ("best metrics", best_metrics, "outcome"),
                               ("stop_event", stop_event, "bench")):
        if needs in state:
            recorder.run(name, check)
        else:
            recorder.add(name, "skip", f"needs '{'train' if needs == 'outcome' else 'training setup'}', which did not pass")
