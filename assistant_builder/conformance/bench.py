"""The workbench the functional checks share: a tiny model, a scratch folder, and a task's sample
data loaded and encoded against the tiny model's tokenizer.

Trainers and exporters are checked on the suite's own reference task (``reference_task.py``, a tiny
sentence classifier built from the toolkit), so the suite depends on no task plugin and a
third-party trainer or exporter is checked exactly like a built-in one.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assistant_builder.contracts import ComponentOptions, Feature, Task, TaskData

MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
MAX_LENGTH = 64
#: a generative task's conversations (chat template, system prompt, answer) need more room
GENERATIVE_MAX_LENGTH = 256


def max_length_for(task: Task) -> int:
    """The ``max_length`` the conformance checks encode ``task``'s sample data with."""
    from assistant_builder.contracts import is_generative

    return GENERATIVE_MAX_LENGTH if is_generative(task) else MAX_LENGTH


def options_for(task: Task, model_dir: Path) -> Any:
    """``task``'s default options, settled for ``model_dir`` as the engine settles them (``prepare_for_model``)."""
    from assistant_builder.contracts import is_generative

    options = task.Options()
    return task.prepare_for_model(options, model_dir, max_length_for(task)) if is_generative(task) else options


def sample_section(task: Task, directory: Path) -> Any:
    """Ask ``task`` for its sample data in ``directory``; return the ``DataSection`` for it (``None`` if it has none)."""
    from assistant_builder.recipe.schema import DataSection

    table = task.sample_data(directory)
    if table is None:
        return None
    if not isinstance(table, dict) or "train" not in table:
        raise TypeError(f"sample_data() must return the recipe's [data] table (a dict with 'train'), got {table!r}")
    resolved = {k: (str(directory / v) if k in ("train", "validation") and v is not None else v) for k, v in table.items()}
    return DataSection.model_validate(resolved)


@dataclass
class TaskBench:
    """A task with its sample data loaded and encoded for the tiny model."""

    task: Task
    options: ComponentOptions
    data: TaskData
    tokenizer: Any
    pad_id: int
    train_features: list[Feature]
    valid_features: list[Feature]
    model_dir: Path

    def build_model(self, seed: int = 0) -> Any:
        import torch

        torch.manual_seed(seed)
        return self.task.build_model(self.model_dir, self.data.labels, self.options, self.train_features)

    def batch(self, features: list[Feature], targets: bool = True) -> dict[str, Any]:
        """A collated batch; without targets, only the model inputs (as the engine hands exporters)."""
        if targets:
            return self.task.collate(features, self.pad_id)
        bare = [{k: f[k] for k in ("input_ids", "token_type_ids") if k in f} for f in features]
        return {k: v for k, v in self.task.collate(bare, self.pad_id).items() if k in MODEL_INPUTS}


def load_bench(task: Task, model_dir: Path, work_dir: Path) -> TaskBench:
    """Sample data -> load_data -> encode, with no checks (the task round trip checks each step)."""
    from assistant_builder.tokenization import load_tokenizer, pad_token_id

    data = sample_section(task, work_dir / "data")
    if data is None:
        raise RuntimeError(f"task '{task.name}' has no sample data")
    options = options_for(task, model_dir)
    loaded = task.load_data(data, options)
    length = max_length_for(task)
    tokenizer = load_tokenizer(model_dir, length)
    train = task.encode(loaded.train, tokenizer, loaded.labels, options, length)
    valid = task.encode(loaded.validation, tokenizer, loaded.labels, options, length)
    return TaskBench(task, options, loaded, tokenizer, pad_token_id(tokenizer), train, valid, model_dir)


@dataclass
class Workspace:
    """Tiny model and scratch space for one conformance session (built lazily, removed by ``close``)."""

    model_dir: Path | None = None
    work_dir: Path | None = None
    _temp: Any = field(default=None, repr=False)
    _benches: dict[str, TaskBench] = field(default_factory=dict, repr=False)
    _count: int = 0

    def scratch(self, name: str) -> Path:
        """A new empty folder for one check."""
        if self.work_dir is None:
            self._temp = tempfile.TemporaryDirectory(prefix="assistant-builder-conformance-")
            self.work_dir = Path(self._temp.name)
        self._count += 1
        path = self.work_dir / f"{self._count:03d}-{name}"
        path.mkdir(parents=True)
        return path

    def tiny_model(self) -> Path:
        if self.model_dir is None:
            from assistant_builder.conformance.tiny_model import make_tiny_bert

            self.model_dir = make_tiny_bert(self.scratch("tiny-bert"))
        return self.model_dir

    def tiny_causal_lm(self) -> Path:
        if getattr(self, "_causal_lm_dir", None) is None:
            from assistant_builder.conformance.tiny_causal_lm import make_tiny_causal_lm

            self._causal_lm_dir = make_tiny_causal_lm(self.scratch("tiny-causal-lm"))
        return self._causal_lm_dir

    def model_for(self, task: Task) -> Path:
        """The tiny model ``task`` is checked with: a causal LM for a generative task, else the tiny BERT."""
        from assistant_builder.contracts import is_generative

        return self.tiny_causal_lm() if is_generative(task) else self.tiny_model()

    def reference_bench(self) -> TaskBench:
        """The reference task on its sample data: what trainers and exporters are checked with."""
        if "reference" not in self._benches:
            from assistant_builder.conformance.reference_task import ReferenceTask

            self._benches["reference"] = load_bench(ReferenceTask(), self.tiny_model(), self.scratch("reference"))
        return self._benches["reference"]

    def close(self) -> None:
        if self._temp is not None:
            self._temp.cleanup()
            self._temp = None
