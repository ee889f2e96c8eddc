"""The torch-free half of a task, run where torch cannot be imported.

``builder predict`` and ``builder serve`` run exported models with ONNX Runtime and call the task's
``encode``, ``decode`` and ``evaluate`` without torch installed. This check replays them in a fresh
interpreter whose import system refuses torch & co., on the validation examples and the model
outputs computed in this process, and compares the predictions.
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from assistant_builder.conformance.results import CheckFailed, CheckSkipped
from assistant_builder.contracts import Task

#: what the replay refuses to import: the training stack, absent from a runtime-only install
REFUSED = ("torch", "transformers", "peft", "accelerate", "onnx", "tensorflow")

_SCRIPT = """
import importlib, importlib.abc, json, pickle, sys, traceback

HEAVY = set(sys.argv[3].split(","))

class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in HEAVY:
            raise ModuleNotFoundError(f"No module named {name!r} (refused: the torch-free runtime has no {name.split('.')[0]})", name=name)
        return None

sys.meta_path.insert(0, Refuse())
stage = "import"
try:
    module_name, _, qualname = sys.argv[1].partition(":")
    target = importlib.import_module(module_name)
    for part in qualname.split("."):
        target = getattr(target, part)
    with open(sys.argv[2], "rb") as handle:
        payload = pickle.load(handle)
    from assistant_builder.tokenization import load_tokenizer
    task = target()
    options = task.Options.model_validate(payload.get("options") or {})
    tokenizer = load_tokenizer(payload["model_dir"], payload["max_length"])
    stage = "encode"
    features = task.encode(payload["examples"], tokenizer, payload["labels"], options, payload["max_length"])
    stage = "decode"
    predictions = task.decode(payload["outputs"], features, payload["examples"], payload["labels"], options)
    keys = [task.prediction_key(p) for p in predictions]
    stage = "evaluate"
    metrics = task.evaluate(predictions, payload["examples"], payload["labels"]).metrics
    same = sum(a == b for a, b in zip(keys, payload["keys"]))
    print(json.dumps({"same": same, "count": len(keys), "expected": len(payload["keys"]), "metrics": sorted(metrics)}))
except Exception as error:
    print(json.dumps({"stage": stage, "error": f"{type(error).__name__}: {error}", "traceback": traceback.format_exc()}))
"""


def check_without_torch(task: Task, examples: Sequence[Any], labels: Sequence[str], model_dir: Path, outputs: dict[str, Any],
                        predictions: Sequence[dict[str, Any]], work: Path, max_length: int = 64, options: Any = None) -> str:
    """Replay encode -> decode -> evaluate without torch; raise ``CheckFailed`` if any of them needs it or disagrees."""
    cls = type(task)
    if "<locals>" in cls.__qualname__ or cls.__module__ == "__main__":
        raise CheckSkipped(f"{cls.__qualname__} cannot be imported by name in a fresh interpreter")
    payload = {"examples": list(examples), "labels": list(labels), "outputs": outputs, "model_dir": str(model_dir),
               "options": options.model_dump(mode="json") if options is not None else None,
               "max_length": max_length, "keys": [task.prediction_key(p) for p in predictions]}
    path = work / "torch-free-payload.pkl"
    try:
        path.write_bytes(pickle.dumps(payload))
    except Exception as error:  # noqa: BLE001
        raise CheckSkipped(f"the task's examples cannot be pickled to replay them in another process: {error}") from error
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p), "PYTHONDONTWRITEBYTECODE": "1"}
    result = subprocess.run([sys.executable, "-c", _SCRIPT, f"{cls.__module__}:{cls.__qualname__}", str(path), ",".join(REFUSED)],
                            env=env, capture_output=True, text=True, timeout=120)
    lines = result.stdout.strip().splitlines()
    if result.returncode != 0 or not lines:
        raise CheckFailed(f"the torch-free replay crashed: {(result.stderr.strip().splitlines() or ['no output'])[-1]}")
    report = json.loads(lines[-1])
    if "error" in report:
        if report["stage"] == "import" and "ModuleNotFoundError" in report["error"] and "refused" not in report["error"]:
            raise CheckSkipped(f"{cls.__module__} cannot be imported by name in a fresh interpreter: {report['error']}")
        raise CheckFailed(f"{report['stage']} without torch failed: {report['error']}; the runtime (builder predict/serve) "
                          "calls encode and decode where torch is not installed, and the contract asks the same of evaluate")
    if report["count"] != report["expected"] or report["same"] != report["count"]:
        raise CheckFailed(f"without torch, {report['same']} of {report['expected']} predictions match the ones made in this "
                          "process from the same outputs; decode must be deterministic")
    return f"encode, decode and evaluate ran without torch; {report['same']}/{report['count']} predictions identical"
