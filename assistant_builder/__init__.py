"""assistant-builder: fine-tune a pretrained transformer on your own labelled text, from the terminal.

The core package defines the plugin hooks, the recipe schema, the engine and the CLI. It imports no
plugin and, at module level, none of torch, transformers, peft, onnx or textual.
"""

from __future__ import annotations

__version__ = "0.1.0"
