"""Building blocks for task plugins: the public API the built-in tasks use too.

A third-party task imports these modules (``assistant_builder.toolkit.<module>``), never
``assistant_builder_tasks``. Importing this package imports none of them. The torch-free ones can be
imported at a task module's top level (``builder predict`` and ``builder serve`` import every task
where torch is not installed); the torch ones only inside ``build_model`` / ``load_model``.

Torch-free:

* ``tags``: IOB1 / IOB2 / BIOES tags: split, detect, convert, validate, repair, spans <-> tags.
* ``alignment``: words and their character offsets, character spans -> words, first sub-tokens.
* ``windows``: inputs longer than ``max_length`` as overlapping windows, and which window decides each word.
* ``word_encoding``: what a token task hands its tokenizer for a sentence's words (byte-level BPE words keep their space).
* ``readers``: CoNLL, parallel ``seq.in``/``seq.out`` lines, token or character-span records, normalised to IOB2 with located errors.
* ``decoding``: softmax, per-word tag decoding (argmax + repair, or the best valid IOB2 path), entity spans.
* ``metrics``: entity-level scores (seqeval, strict IOB2), span errors, classification scores (scikit-learn).
* ``collate``: padding features into a batch (torch imported inside the function).
* ``shapes``: word shapes (casing, digits) as a per-token model input, for encoders whose tokenizer lowercases.
* ``calibration``: temperature scaling of logits, expected calibration error, reliability bins.
* ``outofscope``: out-of-scope rejection: energy score, a threshold fitted on validation, AUROC, the trade-off table.
* ``agreement``: how far an exported model's predictions agree with PyTorch's, per example, unit or overlap (``Task.agreement``).
* ``augment``: seeded training-data augmentation: NER mention and label-wise token replacement, word deletion / swap / span masking (``Task.augment``).
* ``chat``: a model's chat template (from its folder) rendered with jinja2 as transformers does, and which characters are the assistant's turns (completion-only loss).
* ``answer_metrics``: SQuAD-style answer normalisation, exact match and token F1 of text answers.

Torch (import inside the methods that build or load a model):

* ``encoder``: load a pretrained encoder, run it, mean / first-token pooling, head initialisation, per-token loss.
* ``hf_folder``: save a task model as a Hugging Face model folder and load it back.
* ``token_classifier``: a ready encoder + per-token linear head (``*ForTokenClassification``).

``docs/toolkit.md`` is the API reference, generated from these modules by
``python -m assistant_builder.toolkit.reference``.
"""

from __future__ import annotations

TORCH_FREE_MODULES = ("tags", "alignment", "windows", "word_encoding", "readers", "decoding", "metrics", "collate", "shapes", "agreement", "calibration", "outofscope", "augment", "chat", "answer_metrics")
"""Modules that import no torch, transformers, scikit-learn or seqeval when imported."""

TORCH_MODULES = ("encoder", "hf_folder", "token_classifier")
"""Modules that import torch: import them only where a model is built or loaded."""

__all__ = ["TORCH_FREE_MODULES", "TORCH_MODULES"]
