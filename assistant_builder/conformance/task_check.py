"""A task's functional round trip on its own sample data and the tiny model:

sample_data -> load_data -> encode -> build_model -> collate -> forward (+ loss, backward) ->
decode (one JSON-ready prediction per example) -> evaluate (reports the primary metric) ->
save_model / load_model (same outputs) -> the torch-free half (encode, decode, evaluate) again in an
interpreter where torch cannot be imported.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from assistant_builder.conformance.bench import MODEL_INPUTS, TaskBench, Workspace, max_length_for, options_for, sample_section
from assistant_builder.conformance.results import CheckFailed, Recorder, expect
from assistant_builder.contracts import Evaluation, Task, TaskData, is_generative


def _round(values: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in values.items())


def check_task_round_trip(recorder: Recorder, task_class: type[Task], workspace: Workspace) -> None:
    task = task_class()
    if type(task).sample_data is Task.sample_data:
        recorder.add("round trip", "skip", "the task has no sample_data(); implement it to run the round trip with a tiny "
                                           "model (see docs/writing_plugins.md)")
        return
    state: dict[str, Any] = {}
    work = workspace.scratch(f"task-{task.name}")

    def sample() -> str:
        section = sample_section(task, work / "data")
        expect(section is not None, "sample_data() returned None although the task overrides it")
        for key in ("train", "validation"):
            path = getattr(section, key)
            expect(path is None or Path(path).exists(), f"sample_data() returned {key} = {path}, which it did not write")
        state["section"] = section
        return ", ".join(sorted(p.name for p in (work / "data").rglob("*") if p.is_file()))

    def load() -> str:
        loaded = task.load_data(state["section"], task.Options())
        expect(isinstance(loaded, TaskData), f"load_data() must return a contracts.TaskData, got {type(loaded).__name__}")
        expect(loaded.train and loaded.validation,
               f"expected training and validation examples, got {len(loaded.train)} and {len(loaded.validation)}")
        expect(isinstance(loaded.labels, list) and all(isinstance(label, str) for label in loaded.labels),
               f"labels must be a list of strings, got {loaded.labels!r}")
        state["data"] = loaded
        return f"{len(loaded.train)} train, {len(loaded.validation)} validation, {len(loaded.labels)} labels"

    def encode() -> str:
        from assistant_builder.tokenization import load_tokenizer, pad_token_id

        model_dir, max_length = workspace.model_for(task), max_length_for(task)
        data, options = state["data"], options_for(task, model_dir)
        tokenizer = load_tokenizer(model_dir, max_length)
        encoded = {}
        for split, examples in (("train", data.train), ("validation", data.validation)):
            features = task.encode(examples, tokenizer, data.labels, options, max_length)
            expect(isinstance(features, list) and features, f"encode() returned no features for the {split} examples")
            for number, feature in enumerate(features):
                ids = feature.get("input_ids") if isinstance(feature, dict) else None
                expect(isinstance(ids, list) and ids and all(isinstance(i, int) for i in ids),
                       f"{split} feature {number}: 'input_ids' must be a non-empty list of ints, got {type(ids).__name__}")
                expect(len(ids) <= max_length, f"{split} feature {number} has {len(ids)} tokens; max_length is {max_length}")
                index = feature.get("example_index")
                expect(isinstance(index, int) and 0 <= index < len(examples),
                       f"{split} feature {number}: 'example_index' must point into the examples, got {index!r}")
            missing = sorted(set(range(len(examples))) - {f["example_index"] for f in features})
            expect(not missing, f"{split} examples without any feature: {missing[:5]}")
            encoded[split] = features
        state["bench"] = TaskBench(task, options, data, tokenizer, pad_token_id(tokenizer), encoded["train"],
                                   encoded["validation"], model_dir)
        return f"{len(encoded['train'])} + {len(encoded['validation'])} features"

    def build() -> str:
        import torch

        bench: TaskBench = state["bench"]
        model = bench.build_model()
        expect(isinstance(model, torch.nn.Module), f"build_model() must return a torch.nn.Module, got {type(model).__name__}")
        heads = getattr(model, "head_modules", None)
        if is_generative(task) and isinstance(heads, (tuple, list)) and not heads:  # a causal LM trains its own output layer
            state["model"] = model
            return f"{type(model).__name__}, no new head (a generative task fine-tunes the model's own output layer)"
        expect(isinstance(heads, (tuple, list)) and heads,
               "the model needs a 'head_modules' attribute naming its new sub-modules (LoRA keeps them trainable), "
               f"got {heads!r}")
        for name in heads:
            try:
                model.get_submodule(name)
            except AttributeError:
                raise CheckFailed(f"head_modules names {name!r}, which is not a sub-module of the model") from None
        state["model"] = model
        return f"{type(model).__name__}, heads: {', '.join(heads)}"

    def collate() -> str:
        import torch

        bench: TaskBench = state["bench"]
        features = bench.train_features[:4]
        batch = bench.batch(features)
        expect(isinstance(batch, dict), f"collate() must return a dict of tensors, got {type(batch).__name__}")
        for key in ("input_ids", "attention_mask"):
            expect(key in batch and torch.is_tensor(batch[key]), f"collate() must return tensor '{key}', got keys {sorted(batch)}")
        expect(batch["input_ids"].shape[0] == len(features),
               f"batch size {batch['input_ids'].shape[0]}, expected {len(features)} (one row per feature)")
        targets = sorted(set(batch) - set(MODEL_INPUTS))
        expect(targets, "collate() returned no targets for labelled training features, so the model cannot compute a loss")
        state["batch"] = batch
        return f"targets: {', '.join(targets)}"

    def forward() -> str:
        import torch

        model, batch = state["model"], state["batch"]
        rows, width = batch["input_ids"].shape
        model.train()
        outputs = model(**batch)
        expect(isinstance(outputs, dict), f"forward() must return a dict of outputs, got {type(outputs).__name__}")
        missing = [n for n in (*task.output_names, "loss") if n not in outputs]
        expect(not missing, f"forward() with targets is missing {missing}; it returned {sorted(outputs)}")
        for name in task.output_names:
            shape = tuple(outputs[name].shape)
            expect(shape[:1] == (rows,), f"output '{name}' has shape {shape}; expected batch size {rows} first")
            if name in task.sequence_outputs:
                expect(shape[1:2] == (width,), f"sequence output '{name}' has shape {shape}; expected {width} tokens second")
        loss = outputs["loss"]
        expect(torch.is_tensor(loss) and loss.dim() == 0 and math.isfinite(float(loss)),
               f"'loss' must be a finite scalar tensor, got {loss!r}")
        loss.backward()
        graded = [n for n, p in model.named_parameters() if p.grad is not None and float(p.grad.abs().sum()) > 0]
        expect(graded, "loss.backward() gave no parameter a gradient")
        model.zero_grad(set_to_none=True)
        model.eval()
        with torch.no_grad():
            bare = model(**state["bench"].batch(state["bench"].train_features[:4], targets=False))
        missing = [n for n in task.output_names if n not in bare]
        expect(not missing, f"forward() without targets (as exporters call it) is missing {missing}")
        return f"loss {float(loss):.3f}"

    def decode() -> str:
        from assistant_builder.engine.torch_runner import torch_runner
        from assistant_builder.inference import run_features

        bench: TaskBench = state["bench"]
        examples = bench.data.validation
        outputs = run_features(torch_runner(state["model"], task.output_names), bench.valid_features, bench.pad_id,
                               task.output_names, task.sequence_outputs)
        predictions = task.decode(outputs, bench.valid_features, examples, bench.data.labels, bench.options)
        expect(isinstance(predictions, list) and len(predictions) == len(examples),
               f"decode() must return one prediction per example ({len(examples)}), got "
               f"{len(predictions) if isinstance(predictions, list) else type(predictions).__name__}")
        for number, prediction in enumerate(predictions):
            expect(isinstance(prediction, dict) and prediction, f"prediction {number} must be a non-empty dict, got {prediction!r}")
            try:
                json.dumps(prediction, allow_nan=False)
            except (TypeError, ValueError) as error:
                raise CheckFailed(f"prediction {number} is not JSON-serialisable ({error}); convert numpy values with "
                                  f"float()/int()/.tolist(): {prediction!r:.200}") from None
            key = task.prediction_key(prediction)
            expect(key == task.prediction_key(prediction), f"prediction_key() is not stable for prediction {number}")
        state["outputs"], state["predictions"] = outputs, predictions
        return f"keys: {', '.join(sorted(predictions[0]))}"

    def evaluate() -> str | Warning:
        bench: TaskBench = state["bench"]
        evaluation = task.evaluate(state["predictions"], bench.data.validation, bench.data.labels)
        expect(isinstance(evaluation, Evaluation), f"evaluate() must return a contracts.Evaluation, got {type(evaluation).__name__}")
        metrics = evaluation.metrics
        expect(task.primary_metric in metrics, f"evaluate() did not report the primary metric '{task.primary_metric}'; "
                                               f"it reported: {', '.join(metrics) or 'nothing'}")
        bad = {k: v for k, v in metrics.items() if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v)}
        expect(not bad, f"metrics must be finite numbers (metrics.json, early stopping), got {bad}")
        try:
            json.dumps(evaluation.details, allow_nan=False)
        except (TypeError, ValueError) as error:
            raise CheckFailed(f"Evaluation.details is not JSON-serialisable (written to metrics.json): {error}") from None
        expect(isinstance(evaluation.report, str), f"Evaluation.report must be Markdown text, got {type(evaluation.report).__name__}")
        undeclared = sorted(set(metrics) - set(task.metric_names))
        if undeclared:
            return Warning(f"reports metrics missing from metric_names (so train.metric cannot pick them): {', '.join(undeclared)}")
        return _round({k: metrics[k] for k in list(metrics)[:3]})

    def save_load() -> str:
        import numpy as np
        import torch

        bench: TaskBench = state["bench"]
        directory = work / "saved-model"
        directory.mkdir()
        task.save_model(state["model"], directory, bench.data.labels)
        expect(any(directory.iterdir()), f"save_model() wrote nothing to {directory}")
        try:
            again = task.load_model(directory)
        except NotImplementedError as error:
            raise CheckFailed(f"load_model() is not implemented ({error}); the TUI and evaluation reload saved models") from None
        expect(not getattr(again, "training", False), "load_model() must return the model in eval mode")
        batch = bench.batch(bench.valid_features[:4], targets=False)
        with torch.no_grad():
            before, after = state["model"].eval()(**batch), again(**batch)
        for name in task.output_names:
            diff = float(np.max(np.abs(before[name].float().numpy() - after[name].float().numpy())))
            expect(diff <= 1e-4, f"output '{name}' differs by {diff:.2e} after save_model/load_model; "
                                 "the reloaded model must compute the same function (weights, head, config)")
        return f"files: {', '.join(sorted(p.name for p in directory.iterdir()))}"

    def torch_free() -> str:
        from assistant_builder.conformance.torchfree import check_without_torch

        bench: TaskBench = state["bench"]
        return check_without_torch(task, bench.data.validation, bench.data.labels, bench.model_dir, state["outputs"],
                                   state["predictions"], work, max_length_for(task), bench.options)

    recorder.run_steps([
        ("sample_data", sample), ("load_data", load), ("encode", encode), ("build_model", build), ("collate", collate),
        ("forward", forward), ("decode", decode), ("evaluate", evaluate), ("save/load", save_load),
    ])
    if "predictions" in state:
        recorder.run("torch-free runtime", torch_free)
    else:
        recorder.add("torch-free runtime", "skip", "needs 'decode', which did not pass")

