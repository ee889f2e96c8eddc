"""The recipe schema: one pydantic model per TOML table.

Component options (``[task.options]``, ``[train.options]``, ``[export.options.<name>]``) are kept
as plain tables here and validated against the chosen component's ``Options`` model by
``loader.validate_components``. Defaults are the ones that work well on small intent data with
the bundled MiniLM encoder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TaskSection(Section):
    type: str = Field(description="task plugin name, e.g. 'classification'")
    options: dict[str, Any] = Field(default_factory=dict, description="validated by the task's Options")


class ModelSection(Section):
    base: str = Field("minilm-l6", description="alias of a bundled model, path to a local Hugging Face model directory (relative "
                                                "to the recipe), or a Hugging Face Hub id, optionally at a revision "
                                                "('BAAI/bge-small-en-v1.5', 'ORG/NAME@main', 'ORG/NAME@COMMIT'): taken from the "
                                                "local Hugging Face cache (HF_HUB_CACHE / HF_HOME); fetch it there with "
                                                "`hf download ORG/NAME` (builder runs offline unless HF_HUB_OFFLINE=0)")
    max_length: int = Field(128, ge=8, le=8192, description="maximum tokens per input (longer inputs are truncated)")


class DataSection(Section):
    train: Path = Field(description="training data, relative to the recipe: a file (format depends on the task: JSONL, CSV, Parquet, "
                                    "CoNLL, seq.in, SQuAD JSON), a folder of JSONL/CSV/Parquet files, or a Hugging Face dataset "
                                    "saved with save_to_disk")
    validation: Path | None = Field(None, description="validation data (same kinds as train); if absent, validation_split of train is held out")
    validation_split: float = Field(0.1, gt=0.0, lt=0.5, description="fraction held out when no validation file is given")
    split_seed: int = Field(0, ge=0, description="seed of the held-out validation split")
    format: str = Field("auto", description="'auto' (from the extension, or the folder's contents) or one the task reads, e.g. "
                                            "jsonl, csv, parquet, files (a folder of them), hf_disk (a saved dataset), conll, seq, squad")
    dataset_train_split: str = Field("train", min_length=1, description="split of a saved Hugging Face DatasetDict that data.train reads")
    dataset_validation_split: str = Field("validation", min_length=1, description="split of a saved DatasetDict that data.validation reads "
                                          "(data.validation may name the same folder as data.train)")
    extra: list[Path] = Field(default_factory=list, description="labelling stores (*.labels.sqlite, e.g. the one `builder serve "
                              "--feedback` and `builder tui` write) whose labelled items are added to the training data only: "
                              "de-duplicated against it (a store's different label wins and is reported), never put in validation; "
                              "provenance.json counts the examples from each source")

    @field_validator("extra")
    @classmethod
    def _extra_are_stores(cls, paths: list[Path]) -> list[Path]:
        wrong = [str(p) for p in paths if not str(p).endswith(".labels.sqlite")]
        if wrong:
            raise ValueError(f"expected labelling stores (*.labels.sqlite), got {', '.join(repr(w) for w in wrong)}; "
                             "training files go in data.train")
        return paths


class AugmentSection(Section):
    copies: int = Field(0, ge=0, le=20, description="augmented copies made of each training example (never of validation); "
                        "0 = augmentation off. A copy identical to its example is dropped, so fewer may be added. Off by default "
                        "because it measured no better: copies = 1 lowered CLINC150 accuracy at 10 and 50 examples per intent "
                        "and left CoNLL-2003 level at 1,000 sentences; for ner below a few hundred sentences it gave +0.6 "
                        "F1 points, within seed noise (three seeds each, bench/RESULTS.md)")
    probability: float = Field(0.1, gt=0.0, le=1.0, description="chance that an operation changes each mention or word "
                               "(swap and span masking: the share of the words they touch)")
    seed: int | None = Field(None, ge=0, description="seed of the augmentation; default: train.seed")
    mention_replacement: bool = Field(True, description="ner: replace an entity mention by another training mention of the same type")
    token_replacement: bool = Field(True, description="ner: replace a word by another training word seen with the same tag")
    deletion: bool = Field(True, description="classification: drop random words (one operation is chosen per copy)")
    swap: bool = Field(True, description="classification: swap random pairs of words")
    span_mask: bool = Field(False, description="classification: replace a random span of words by mask_token (off by "
                            "default: the mask token depends on the base model's tokenizer)")
    mask_token: str = Field("[MASK]", min_length=1, description="the word span_mask writes (BERT-style tokenizers: [MASK])")
    max_span: int = Field(3, ge=1, le=16, description="longest span span_mask replaces")


class TrainSection(Section):
    trainer: str = Field("full", description="trainer plugin name: 'full' or 'lora'")
    epochs: int = Field(6, ge=0, le=1000, description="passes over the training data (early stopping may end sooner); 0 evaluates "
                                                      "and exports the base model untouched (the baseline to compare against)")
    batch_size: int = Field(32, ge=1, le=4096, description="examples per optimiser step (per process), before accumulation")
    learning_rate: float | None = Field(None, gt=0.0, le=1.0, description="peak learning rate of the encoder (or LoRA adapters); default: the "
                                          "task's for its trainer where it names one (ner with full: 2e-4, better on SNIPS and level "
                                          "on CoNLL-2003, see bench/RESULTS.md), else the trainer's (full 1e-4, lora 2e-3)")
    head_learning_rate: float | None = Field(None, gt=0.0, le=1.0, description="learning rate of the new task head; default: the "
                                             "task's (classification 3e-3, part of the small-data defaults measured together on "
                                             "CLINC150 at 5 and 10 examples per intent, see bench/RESULTS.md; ner and qa 1e-3)")
    weight_decay: float = Field(0.01, ge=0.0, le=1.0, description="AdamW decoupled weight decay (not applied to biases and LayerNorm weights)")
    warmup_ratio: float = Field(0.1, ge=0.0, le=0.5, description="fraction of steps with linear warmup, then linear decay")
    gradient_accumulation_steps: int = Field(1, ge=1, le=1024, description="batches whose gradients are summed before each optimiser step")
    max_grad_norm: float = Field(1.0, ge=0.0, description="clip the gradient norm to this; 0 disables clipping")
    freeze_word_embeddings: bool = Field(True, description="keep the pretrained word-embedding matrix fixed (half of MiniLM's "
                                         "weights): no accuracy lost on the benchmarks, ~6% faster steps, ~140 MB less memory "
                                         "(bench/RESULTS.md); set false for text far from the base model's vocabulary use")
    attention_dropout: float | None = Field(0.0, ge=0.0, lt=1.0, description="dropout on the encoder's attention weights while "
                                            "training; 0 lets CPUs use the fused attention kernel (~8% faster steps); None keeps the "
                                            "base model's value (0.1 for BERT models)")
    seed: int = Field(42, ge=0, description="seed of model initialisation, shuffling and dropout (same seed, same data: same weights)")
    min_steps: int = Field(600, ge=0, description="fewest optimiser steps (unset: 600, or the task's own default: generation 0): when train.epochs would give fewer, the run "
                           "raises the epoch count to reach them and says so (small data needs more passes; with the other "
                           "small-data defaults, measured on CLINC150 at 5 and 10 examples per intent over three seeds, see bench/RESULTS.md); "
                           "0 = exactly train.epochs")
    early_stopping_patience: int = Field(3, ge=0, description="epochs without improvement before stopping (epochs that end inside the learning-rate warmup do not count); 0 disables")
    early_stopping_min_per_label: float = Field(5.0, ge=0.0, description="early stopping is switched off (the run says so) "
                                                "when the validation data has fewer examples per label on average than "
                                                "this: too few to tell a better epoch from noise; 0 = never switch it off")
    metric: str | None = Field(None, description="validation metric to maximise; default: the task's primary metric")
    group_by_length: bool = Field(True, description="batch examples of similar length together (less padding)")
    checkpoint_every_steps: int = Field(0, ge=0, description="also checkpoint every N optimiser steps; 0 = each epoch only")
    keep_checkpoints: int = Field(2, ge=1, description="resumable checkpoints kept (the best model is always kept as well)")
    precision: Literal["auto", "fp32", "bf16", "fp16"] = Field("auto", description="'auto': bf16 on a CUDA GPU that supports it, fp32 on CPU")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="'auto': CUDA when a GPU is visible, else CPU")
    num_threads: int | None = Field(None, ge=1, description="torch CPU threads; default: all cores")
    augment: AugmentSection = Field(default_factory=AugmentSection, description="offline, seeded augmentation of the training "
                                    "data (tasks that implement Task.augment: classification, ner); off unless copies > 0")
    options: dict[str, Any] = Field(default_factory=dict, description="validated by the trainer's Options")


class UpdateSection(Section):
    """``builder run RECIPE --from RUN``: a warm-start update of an earlier run (docs/updates.md)."""

    epochs: int = Field(4, ge=1, le=100, description="passes over the update's examples (what is new plus the replayed sample); "
                        "train.epochs and train.min_steps apply to full runs only")
    replay: float = Field(4.0, ge=0.0, description="parent training examples replayed per new training example (a seeded "
                          "sample, so the model rehearses what it knew and does not forget it)")
    learning_rate_scale: float = Field(0.25, gt=0.0, le=1.0, description="the update's peak learning rates (encoder and "
                                       "head) are the full run's times this (a warm start needs smaller steps than "
                                       "a fresh head; measured on CLINC150, see docs/updates.md)")
    min_replay: int = Field(256, ge=0, description="replay at least this many parent examples (all of them when it has fewer)")
    holdout: float = Field(0.2, ge=0.0, lt=1.0, description="share of the new examples of the parent's labels held out of training to "
                           "check the update learned them (only when there are at least 10; never an example of a new label)")
    max_forgetting: float = Field(0.01, ge=0.0, le=1.0, description="the update is refused when it loses more than this on the "
                                  "parent's validation set (train.metric, as a fraction: 0.01 = one point)")


class ExportSection(Section):
    formats: list[str] = Field(default_factory=lambda: ["onnx", "torchscript"], description="exporter plugin names")
    max_metric_drop: float = Field(0.01, ge=0.0, le=1.0, description="fail if the exported model's metric is lower by more than this")
    min_agreement: float | None = Field(None, ge=0.0, le=1.0, description="fail if predictions agree with PyTorch on less than "
                                        "this share of the task's units (classification: examples; ner: entities; qa: answer "
                                        "tokens); default: the task's measured default (classification 0.99, see docs/recipes.md)")
    on_failure: Literal["fallback", "fail"] = Field("fallback", description="when an optional variant (int8) breaks a threshold: "
                                                    "'fallback' rejects it and keeps the run green with the verified fp32 model as "
                                                    "the bundle's default; 'fail' fails the run (for CI). A failed fp32 export always "
                                                    "fails the run")
    max_abs_diff: float | None = Field(None, gt=0.0, description="fail if any output differs by more than this (fp32 exports only)")
    options: dict[str, dict[str, Any]] = Field(default_factory=dict, description="per-exporter options, e.g. [export.options.onnx]")


class OutputSection(Section):
    runs_dir: Path = Field(Path("runs"), description="where run directories are created, relative to the recipe")


class Recipe(Section):
    recipe_version: Literal[1] = Field(1, description="version of the recipe format; 1 is the only one so far")
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$", description="run name, used in the run directory")
    description: str = Field("", description="free text, shown in reports and `builder tui`")
    task: TaskSection
    model: ModelSection = Field(default_factory=ModelSection)
    data: DataSection
    train: TrainSection = Field(default_factory=TrainSection)
    export: ExportSection = Field(default_factory=ExportSection)
    update: UpdateSection = Field(default_factory=UpdateSection, description="warm-start updates (`builder run --from RUN`)")
    output: OutputSection = Field(default_factory=OutputSection)
    log: dict[str, bool | dict[str, Any]] = Field(
        default_factory=dict,
        description="extra metrics loggers by plugin name: `tensorboard = true`, or a [log.<name>] options table; "
                    "metrics.jsonl is always written")
