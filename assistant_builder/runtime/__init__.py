"""The torch-free edge runtime: run an exported ONNX bundle with onnxruntime and tokenizers.

``load_predictor("runs/my-run").predict(["some text"])`` returns the task's prediction dicts.
Imports numpy, onnxruntime, tokenizers, pydantic, pluggy and the core only: never torch,
transformers, peft, onnx, accelerate or scikit-learn (a subprocess test checks).
"""

from __future__ import annotations

from assistant_builder.runtime.bundle import Bundle, read_bundle
from assistant_builder.runtime.predictor import Predictor, load_predictor

__all__ = ["Bundle", "Predictor", "load_predictor", "read_bundle"]
