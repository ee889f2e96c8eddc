"""The contracts that task, trainer and exporter plugins implement.

Each component is a small class with a unique lowercase ``name``, a one-line ``description`` and a
pydantic ``Options`` model (``extra="forbid"``) that validates its sub-table in a recipe. The host
checks all of that when a plugin registers a component (see ``registry.py``).

Optional task hooks have defaults that do nothing: ``Task.augment(examples, settings, rng)``
returns augmented training examples for ``[train.augment]`` (default: none), ``Task.check_data``
adds data checks, ``Task.resolve_options`` settles ``"auto"`` options, ``sample_data`` writes demo
data; ``Task.head_learning_rate`` is the new head's learning rate when the recipe sets none, and
``Task.learning_rates`` the encoder's, per trainer (a trainer not named keeps its own default).

Import rule: a plugin module is imported by the torch-free paths (``builder validate``,
``builder plugins``, ``builder predict``), so it must import torch, transformers, peft and onnx
only *inside* the methods that need them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:  # pragma: no cover - typing only
    import random
    import threading

    import numpy as np
    from tokenizers import Tokenizer

    from assistant_builder.callbacks import Callback, CallbackList
    from assistant_builder.recipe.schema import AugmentSection, DataSection, TrainSection

Feature = dict[str, Any]
"""One encoded model input: ``input_ids`` (list[int]) plus task fields such as ``labels``."""

Outputs = dict[str, "np.ndarray"]
"""Named model outputs for one padded batch as numpy arrays, batch first (``{"logits": [B, C]}``)."""

FeatureOutputs = dict[str, list["np.ndarray"]]
"""Named model outputs split per feature (batch axis removed, padding trimmed from sequence outputs),
aligned with the feature list they were computed for."""


class ComponentOptions(BaseModel):
    """Base for every component's ``Options``: unknown keys are errors, values are validated."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class NoOptions(ComponentOptions):
    """Options model for a component that takes none."""


class Component(ABC):
    """Common surface of tasks, trainers and exporters."""

    name: ClassVar[str]
    description: ClassVar[str] = ""
    Options: ClassVar[type[ComponentOptions]] = NoOptions


# ---------------------------------------------------------------------------------------------
# Tasks
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TaskData:
    """What a task loaded from the recipe's data section.

    ``train`` and ``validation`` hold task-specific example objects; ``labels`` is the ordered
    label set (index = class id); ``sources`` maps split name to the file it came from.
    """

    train: list[Any]
    validation: list[Any]
    labels: list[str]
    sources: dict[str, Path] = field(default_factory=dict)


@dataclass(frozen=True)
class Evaluation:
    """A task's verdict on a set of predictions.

    ``metrics`` holds flat numeric metrics (the primary metric among them); ``details`` holds
    structured extras (per-label scores, confusion matrix) for ``metrics.json``; ``report`` is
    readable Markdown for ``report.md``.
    """

    metrics: dict[str, float]
    details: dict[str, Any] = field(default_factory=dict)
    report: str = ""


@dataclass(frozen=True)
class DecisionRule:
    """What ``Task.fit_decision_rule`` fitted on the validation data after training.

    ``options``: the task options with the fitted values (a rejection threshold, a temperature);
    the engine uses them for the run's own evaluation, saves them in ``task_options.json`` and every
    export's bundle, so the runtime decides exactly as the report says. ``summary``: JSON figures
    for ``metrics.json`` and ``summary.json`` (key ``decision_rule``). ``report``: a Markdown section
    appended to ``report.md``. ``files``: extra files (name -> bytes, e.g. a PNG chart the report
    links to) written into the run directory. ``warnings``: what the user must be told (too little
    validation data, and the rule used instead), shown as a stage line and kept in the summary.
    """

    options: ComponentOptions
    summary: dict[str, Any] = field(default_factory=dict)
    report: str = ""
    files: dict[str, bytes] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Agreement:
    """How far an exported model's predictions agree with the PyTorch model's on the same inputs.

    ``value`` (0..1) is the figure ``export.min_agreement`` gates, counted in ``unit``: for a task
    whose prediction is one decision per example (a label) the unit is ``"examples"``; token and
    span tasks count smaller units (``"entities"``, ``"answer tokens"``), so one differing entity
    in a long sentence costs one entity, not the whole sentence. ``examples`` is the fraction of
    examples whose whole prediction is the same (``Task.prediction_key``); it is always reported
    beside ``value``.
    """

    value: float
    unit: str
    examples: float


#: severity of a data-check finding, lowest first (``builder data check --fail-on LEVEL``).
FINDING_LEVELS: tuple[str, ...] = ("info", "warning", "error")


@dataclass(frozen=True)
class ExampleView:
    """What the generic data checks (``builder data check``) see of one example, whatever the task.

    ``text`` is the model input as one string (``""`` for an empty input) and ``text_pair`` an
    optional second segment (QA: question and context): duplicates, leakage and length are judged
    on them. ``label`` is the example's whole target as one string (a class, a tag sequence, an
    answer; ``None`` when unlabelled): two examples with the same text and different labels conflict.
    ``classes`` are the labels it counts towards (its class; each entity mention's type): class
    balance, rare labels and labels seen in one split only. ``source`` locates it: ``file:line``
    or a record id.
    """

    text: str
    label: str | None
    classes: tuple[str, ...]
    source: str
    text_pair: str | None = None


@dataclass(frozen=True)
class Finding:
    """One problem or risk in the data, located.

    ``check`` names the check (``duplicate``, ``label_conflict``, ``ner.invalid_tags``...);
    ``level`` is one of ``FINDING_LEVELS`` (``error``: training would fail or learn something
    wrong; ``warning``: likely to hurt; ``info``: worth knowing). ``where`` is the ``file:line`` (or
    record id, or the file for a whole-dataset finding) and ``message`` says what was found and what
    was expected. ``related`` are the other examples involved (the first copy of a duplicate...) and
    ``count`` how many examples the finding stands for.
    """

    check: str
    level: str
    where: str
    message: str
    related: tuple[str, ...] = ()
    count: int = 1


@dataclass
class CheckData:
    """The examples a task hands to the data checks (``Task.check_examples``).

    ``train`` and ``validation`` are iterables of ``ExampleView`` (a generator may stream a large
    file; each is iterated once). ``held_out`` is true when the validation examples were held out of
    ``data.train`` (no ``data.validation``).
    """

    train: Iterable[ExampleView]
    validation: Iterable[ExampleView]
    held_out: bool = False


@dataclass(frozen=True)
class CheckContext:
    """What a task-specific check (``Task.check_data``) may need: the recipe's ``model.max_length``,
    the base model's tokenizer without truncation or padding (``None`` if it has no
    ``tokenizer.json``) and the base model's folder (``None`` when it could not be resolved; the
    ``generation`` task reads its chat template there)."""

    max_length: int
    tokenizer: Tokenizer | None = None
    model_dir: Path | None = None


#: the values of ``Task.labelling_kind``: which labelling widget the TUI shows for a task.
LABELLING_KINDS: tuple[str, ...] = ("text_class", "token_spans", "answer_span", "response")


@dataclass(frozen=True)
class StoreRecord:
    """An example as the labelling store keeps it: its input (``payload``) and its label (``gold``).

    The shapes depend only on the task's ``labelling_kind`` (they are what ``builder tui`` edits):

    * ``text_class``: ``payload = {"text": str}``; ``gold`` is the label (a string).
    * ``token_spans``: ``payload = {"tokens": [str, ...]}``; ``gold`` is a list of token spans
      ``{"start": int, "end": int, "label": str}`` (end exclusive, ``label`` an entity type without
      a ``B-``/``I-`` prefix, no two spans overlapping).
    * ``answer_span``: ``payload = {"question": str, "context": str}``; ``gold`` is
      ``{"answers": [{"text": str, "answer_start": int}]}`` (an empty list: unanswerable).
    * ``response``: ``payload = {"messages": [{"role": str, "content": str}, ...]}`` (the prompt: the
      conversation up to the answer, roles ``system``/``user``/``assistant``); ``gold`` is the
      response the assistant should give (a non-empty string).

    ``gold`` is ``None`` for an unlabelled example. Both are JSON-ready.
    """

    payload: dict[str, Any]
    gold: Any = None
    #: where the example came from (``train.jsonl:12``, ``serve``), for messages; not part of its identity
    source: str = ""


FEEDBACK_HINT = ("implement Task.to_store and Task.from_store (and prediction_gold / feedback_gold for a labelling kind "
                 "other than text_class); see docs/writing_plugins.md, 'Feedback from deployment'")


class Task(Component):
    """A task type: how to read its data, encode it, build a model, decode and score outputs.

    ``encode``, ``decode``, ``evaluate`` and ``parse_input`` must work without torch: the
    torch-free runtime uses them on exported models.
    """

    #: kind of labelling UI the task needs: "text_class", "token_spans" or "answer_span".
    labelling_kind: ClassVar[str]
    #: metric (a key of ``Evaluation.metrics``, higher is better) used by default for
    #: early stopping, best-checkpoint selection and export gates.
    primary_metric: ClassVar[str]
    #: names of the model's outputs, in export order.
    output_names: ClassVar[tuple[str, ...]]
    #: outputs whose second axis is the token sequence (trimmed to each feature's length).
    sequence_outputs: ClassVar[tuple[str, ...]] = ()
    #: every metric ``evaluate`` reports (valid values of ``train.metric``).
    metric_names: ClassVar[tuple[str, ...]] = ()
    #: arguments of ``builder predict RUN ...`` that show a user how to try the model.
    predict_example: ClassVar[str] = '"your text here"'
    #: values of ``data.format`` this task reads (besides "auto").
    data_formats: ClassVar[tuple[str, ...]] = ("jsonl",)
    #: ``export.min_agreement`` when the recipe leaves it unset: the smallest ``agreement().value``
    #: an export may have. Chosen per task from measurement (bench/RESULTS.md): high enough that a
    #: broken export fails, low enough that a good int8 model of a long-sequence task passes.
    min_agreement: ClassVar[float] = 0.99
    #: learning rate of the new head when the recipe leaves ``train.head_learning_rate`` unset
    #: (classification: 3e-3, measured on small intent data; bench/RESULTS.md).
    head_learning_rate: ClassVar[float] = 1e-3
    #: encoder learning rate per trainer name when the recipe leaves ``train.learning_rate`` unset;
    #: a trainer not named here uses its ``Trainer.default_learning_rate``. Empty: every trainer's own.
    learning_rates: ClassVar[Mapping[str, float]] = {}
    #: ``train.min_steps`` when the recipe leaves it unset; ``None``: the recipe default (600, measured
    #: for small encoder datasets). A causal LM task sets 0: its epochs are long and few.
    default_min_steps: ClassVar[int | None] = None
    #: the metric export verification gates with ``export.max_metric_drop`` (``None``: the run's
    #: ``train.metric``). The ``generation`` task trains on validation loss but gates exports on the
    #: token F1 of generated answers, what a user of the export gets.
    export_metric: ClassVar[str | None] = None

    @abstractmethod
    def load_data(self, data: DataSection, options: ComponentOptions) -> TaskData:
        """Read train and validation data; raise ``DataError`` naming file and line on bad input."""

    @abstractmethod
    def encode(
        self, examples: Sequence[Any], tokenizer: Tokenizer, labels: Sequence[str],
        options: ComponentOptions, max_length: int,
    ) -> list[Feature]:
        """Turn examples into features (unpadded token ids, plus targets when the example has them).

        ``tokenizer`` has padding disabled and truncation set to ``max_length``. Each feature
        has at least ``input_ids`` and ``example_index`` (position of its example in ``examples``).
        """

    @abstractmethod
    def build_model(
        self, base_model: Path, labels: Sequence[str], options: ComponentOptions,
        train_features: Sequence[Feature] | None = None,
    ) -> Any:
        """Return a ``torch.nn.Module`` initialised from ``base_model``.

        Its ``forward(input_ids, attention_mask, token_type_ids, **targets)`` returns a dict with
        the task's ``output_names`` and, when targets are given, ``loss``. The module has a
        ``head_modules`` attribute: names of the freshly initialised sub-modules (always trained,
        kept trainable under LoRA). ``train_features`` lets the task compute class weights.

        Optional: a ``hf_config_files()`` method returning ``{file name: JSON content}`` (e.g.
        ``config.json`` with ``id2label``, ``tokenizer_config.json``). The ONNX exporter writes
        those files into the bundle so Optimum's ``ORTModelFor...`` classes can load it.
        """

    @abstractmethod
    def collate(self, features: Sequence[Feature], pad_token_id: int) -> dict[str, Any]:
        """Pad a list of features into a batch of torch tensors (targets included)."""

    @abstractmethod
    def decode(
        self, outputs: FeatureOutputs, features: Sequence[Feature], examples: Sequence[Any],
        labels: Sequence[str], options: ComponentOptions,
    ) -> list[dict[str, Any]]:
        """Turn per-feature model outputs into one JSON-ready prediction per example (in order)."""

    @abstractmethod
    def evaluate(
        self, predictions: Sequence[dict[str, Any]], examples: Sequence[Any], labels: Sequence[str],
    ) -> Evaluation:
        """Score predictions against the gold labels of ``examples``.

        A task whose scores depend on its options (the classification task's ``fallback_label``)
        may take a keyword argument ``options``: the host passes the task options to such an
        ``evaluate`` (see ``evaluate_with_options``) and calls the others without it.
        """

    @abstractmethod
    def parse_input(self, raw: Any) -> Any:
        """Turn one user input (a string or a JSON object) into an unlabelled example."""

    def model_input_names(self, options: ComponentOptions) -> tuple[str, ...]:
        """The model's inputs under ``options``, in export order: ``input_ids``, ``attention_mask``,
        ``token_type_ids``, then any task-specific ones.

        A task-specific input is one int per token, which ``encode`` puts in each feature under its
        name (same length as ``input_ids``); the host pads it with 0, passes it to the model's
        ``forward`` by name, exports it as a graph input and feeds it in the runtime. Default: the
        three standard inputs.
        """
        return ("input_ids", "attention_mask", "token_type_ids")

    def resolve_options(self, options: ComponentOptions, data: TaskData, tokenizer: Tokenizer) -> ComponentOptions:
        """Settle data-dependent choices (``"auto"`` options) once, from the training data and tokenizer.

        Called by the engine after ``load_data``; the returned options are used for the whole run
        and saved in the bundle, so the runtime decides the same way on a single input. Options
        that reach ``encode`` unresolved (bundles and runs made before the option existed) must
        behave as that earlier version did. Default: ``options`` unchanged.
        """
        return options

    def fit_decision_rule(self, outputs: FeatureOutputs, features: Sequence[Feature], examples: Sequence[Any],
                          labels: Sequence[str], options: ComponentOptions) -> DecisionRule | None:
        """Optional: fit how predictions are decided (a rejection threshold, calibration) on validation data.

        Called once by the engine after training with the final PyTorch model's ``outputs`` on the
        validation ``features`` (as ``decode`` gets them). Return ``None`` (the default) to keep
        ``options``; else a ``DecisionRule`` whose ``options`` hold the fitted values, which
        ``decode`` then applies (the engine re-decodes and re-evaluates with them, and bundles
        them). Must be torch-free and deterministic; ``decode`` with options that lack the fitted
        fields (older bundles) must behave as before.
        """
        return None

    def prediction_key(self, prediction: dict[str, Any]) -> Any:
        """What must match for two predictions to "agree" (export verification). Default: all but scores."""
        return repr(sorted((k, v) for k, v in prediction.items() if k not in ("score", "scores", "top")))

    def agreement(self, predictions: Sequence[dict[str, Any]], reference: Sequence[dict[str, Any]]) -> Agreement:
        """How far ``predictions`` (an exported model's) agree with ``reference`` (the PyTorch model's), in order.

        Export verification gates ``value`` with ``export.min_agreement`` (default
        ``min_agreement``). Default: the fraction of examples with equal ``prediction_key``
        (unit ``"examples"``). Token and span tasks should count finer units (see
        ``assistant_builder.toolkit.agreement``). Must be torch-free.
        """
        from assistant_builder.toolkit.agreement import example_agreement

        share = example_agreement([self.prediction_key(p) for p in predictions], [self.prediction_key(p) for p in reference])
        return Agreement(share, "examples", share)

    def save_model(self, model: Any, directory: Path, labels: Sequence[str]) -> None:
        """Save ``model`` to ``directory`` as a Hugging Face model folder (default: ``save_pretrained``).

        The folder should load with ``transformers`` alone (``pipeline(...)`` or an
        ``AutoModelFor...`` class, with ``trust_remote_code`` if the head is custom) and with
        ``load_model``. The engine adds ``tokenizer.json``.
        """
        model.save_pretrained(directory)

    def load_model(self, directory: Path) -> Any:
        """Load a model written by ``save_model`` (eval mode, CPU)."""
        raise NotImplementedError(f"task '{self.name}' cannot reload saved models")

    def sample_data(self, directory: Path) -> dict[str, Any] | None:
        """Optional: write a few labelled examples to ``directory`` and return the recipe's ``[data]`` table for them.

        Paths in the returned table are relative to ``directory``, e.g.
        ``{"train": "train.jsonl", "validation": "valid.jsonl"}`` (``format`` may be set too). The
        files must be readable with the task's default ``Options``, hold at least two labels (if
        the task has labels), and give a non-empty validation set. ``builder init`` copies them into a new project as data
        to replace, and the conformance suite (``builder plugins check``) runs its round trip on
        them with a tiny model. Must not import torch. Default: ``None`` (no sample data; the
        round trip is skipped and ``builder init`` writes only the recipe).
        """
        return None

    def augment(self, examples: Sequence[Any], settings: AugmentSection, rng: random.Random) -> list[Any]:
        """Optional: new training examples made from ``examples`` (``[train.augment]``, see ``AugmentSection``).

        Called by the engine after loading the data and before encoding, only when
        ``settings.copies > 0``, with the *training* examples only (validation is never
        augmented) and a ``random.Random`` seeded from ``settings.seed`` (or ``train.seed``): the
        result must depend only on those, so a run is reproducible. Return up to
        ``settings.copies`` new examples per example (the engine appends them; the originals are
        kept), labelled like the examples they came from. Must not import torch. Building blocks:
        ``assistant_builder.toolkit.augment``. Default: no new examples (the run says so).
        """
        return []

    # -- data checks (``builder data check``; see docs/data_quality.md) -------------------------

    #: what the task does with inputs longer than ``model.max_length``: "truncate" (the rest is
    #: cut: a warning in ``builder data check``) or "window" (split into overlapping windows: info).
    long_inputs: ClassVar[str] = "truncate"

    def example_view(self, example: Any) -> ExampleView:
        """What the generic data checks see of one of this task's examples (see ``ExampleView``).

        Default: the example's ``text`` attribute (else its ``tokens`` joined by spaces, else its
        ``question`` with ``context`` as ``text_pair``), its ``label``, ``intent``, ``tags`` and
        ``answers`` attributes (those present, as the label; string ``label``/``intent`` values as
        its classes) and its ``source``. Override it when the examples look different.
        """
        return default_example_view(example)

    def check_examples(self, data: DataSection, options: ComponentOptions) -> CheckData:
        """The recipe's train and validation examples as ``ExampleView``s, for ``builder data check``.

        Default: ``load_data`` then ``example_view`` on each example (so data that ``load_data``
        rejects is reported as the usual located ``DataError``). Override it to read leniently
        (report an empty text as a finding rather than stop on it) or to stream large files.
        Must not import torch.
        """
        loaded = self.load_data(data, options)
        return CheckData([self.example_view(e) for e in loaded.train], [self.example_view(e) for e in loaded.validation],
                         held_out=data.validation is None)

    def check_data(self, data: DataSection, options: ComponentOptions, context: CheckContext) -> list[Finding]:
        """Optional task-specific data checks (tag sequences, answer offsets...), each finding
        located. Runs after the generic checks; must not import torch. Default: none."""
        return []


    # -- feedback from deployment: ``builder serve --feedback``, ``data.extra`` ------------------
    # Optional as a whole: a task that implements ``to_store`` and ``from_store`` (and, unless its
    # labelling kind is ``text_class``, ``prediction_gold`` and ``feedback_gold``) can be served
    # with feedback capture and retrained on what was captured. Every method here must work
    # without torch (the server runs them). Building blocks: ``assistant_builder.feedback``.

    #: fields of a ``POST /feedback`` body (besides ``prediction_id`` and ``correct``) that carry the
    #: right answer in this task's own shape, e.g. ``("label",)``; ``feedback_gold`` reads them.
    feedback_fields: ClassVar[tuple[str, ...]] = ()
    #: ``builder serve --capture uncertain`` stores a prediction whose ``prediction_confidence`` is
    #: below this (``--capture-threshold`` overrides it).
    capture_threshold: ClassVar[float] = 0.5

    def to_store(self, example: Any) -> StoreRecord:
        """The labelling store's record of ``example`` (an example from ``parse_input`` or ``load_data``).

        ``payload`` is the input in the shape of the task's ``labelling_kind`` (see ``StoreRecord``)
        and must identify the input: two examples with equal payloads are the same input (this is
        how ``data.extra`` de-duplicates against the training data). ``gold`` is the example's label
        in that shape, ``None`` when it has none. Default: raises ``NotImplementedError`` (no
        feedback support).
        """
        raise NotImplementedError(f"task '{self.name}' does not implement the feedback contract: {FEEDBACK_HINT}")

    def from_store(self, record: StoreRecord, labels: Sequence[str], options: ComponentOptions) -> Any:
        """A labelled training example from a store record (``data.extra``, regression sets).

        ``labels`` is the model's label set (as ``TaskData.labels``). Raise ``DataError`` saying
        what was expected when the record does not fit (a label outside ``labels``, a span outside
        the tokens, an answer that is not in the context, an unanswerable question the options do
        not allow). ``to_store(from_store(r))`` must give ``r`` back. Default: raises
        ``NotImplementedError``.
        """
        raise NotImplementedError(f"task '{self.name}' does not implement the feedback contract: {FEEDBACK_HINT}")

    def prediction_gold(self, example: Any, prediction: dict[str, Any]) -> Any:
        """The model's guess (one of ``decode``'s predictions for ``example``) as a store ``gold``.

        This is what ``{"correct": true}`` feedback records, and the suggestion ``builder tui``
        pre-fills. Default: ``prediction["label"]`` for ``text_class`` tasks, else
        ``NotImplementedError``.
        """
        if self.labelling_kind == "text_class" and isinstance(prediction.get("label"), str):
            return prediction["label"]
        raise NotImplementedError(f"task '{self.name}' does not implement prediction_gold: {FEEDBACK_HINT}")

    def feedback_gold(self, example: Any, prediction: dict[str, Any], correction: Mapping[str, Any],
                      labels: Sequence[str], options: ComponentOptions) -> Any:
        """Validate a user's correction of ``prediction`` and return it as a store ``gold``.

        ``correction`` is the ``POST /feedback`` body without ``prediction_id``: ``{"correct": true}``
        or exactly one of ``feedback_fields`` (the server has checked that no other field is
        present). Raise ``DataError`` whose message starts with the field and says what was
        expected, e.g. ``label: expected one of alarm, music, weather; got 'x'`` (the server answers
        422 with it and records nothing). Default: ``correct: true`` gives ``prediction_gold``;
        ``label`` (``text_class`` tasks) must be one of ``labels``.
        """
        from assistant_builder.errors import DataError
        from assistant_builder.feedback_values import require_label

        if correction.get("correct") is True:
            return self.prediction_gold(example, prediction)
        if self.labelling_kind == "text_class" and "label" in correction:
            return require_label(correction["label"], labels, "label")
        accepted = ", ".join(["correct", *self.feedback_fields])
        raise DataError(f"expected one of the fields {accepted} with the right answer, got {', '.join(sorted(correction)) or 'none'}")

    def prediction_confidence(self, prediction: dict[str, Any]) -> float | None:
        """How sure the model is of ``prediction``, in [0, 1] (1: sure); ``None`` when the task has no measure.

        ``builder serve --capture uncertain`` stores predictions below ``capture_threshold``, and
        the store orders its queue by it. A prediction with ``"in_scope": false`` (rejected by an
        out-of-scope rule) must count as uncertain: return 0. Default
        (``assistant_builder.feedback.default_confidence``): 0 for out-of-scope predictions, else the
        margin between the two best scores of ``top``, else the lowest entity ``score``, else ``score``.
        """
        from assistant_builder.feedback_values import default_confidence

        return default_confidence(prediction)


def default_example_view(example: Any) -> ExampleView:
    """``Task.example_view``'s default: read the usual attribute names of an example object."""
    text, pair = getattr(example, "text", None), None
    if not isinstance(text, str):
        tokens, question = getattr(example, "tokens", None), getattr(example, "question", None)
        if isinstance(tokens, (list, tuple)):
            text = " ".join(map(str, tokens))
        elif isinstance(question, str):
            text, pair = question, str(getattr(example, "context", ""))
        else:
            text = str(example)
    parts = {name: getattr(example, name) for name in ("label", "intent", "tags", "answers") if getattr(example, name, None) is not None}
    label = " | ".join(v if isinstance(v, str) else repr(v) for v in parts.values()) if parts else None
    classes = tuple(v for k, v in parts.items() if k in ("label", "intent") and isinstance(v, str))
    return ExampleView(text, label, classes, str(getattr(example, "source", "")), pair)


# ---------------------------------------------------------------------------------------------
# Generative tasks (optional protocol)
# ---------------------------------------------------------------------------------------------

Generator = Callable[[Sequence[Sequence[int]], int], list[list[int]]]
"""Greedy generation: ``generate(prompts, max_new_tokens)`` continues each prompt (token ids) and
returns its new token ids, stopping at the model's end-of-sequence token (not included) or after
``max_new_tokens``. The PyTorch model's comes from ``GenerativeTask.torch_generator``; an exported
artefact's from the exporter's ``load_generator(artifact)``."""


@runtime_checkable
class GenerativeTask(Protocol):
    """Optional protocol of a task whose predictions are generated text (the ``generation`` task).

    A task that has these methods (``is_generative``) changes the engine's run in four places:

    1. ``prepare_for_model(options, base_model, max_length)`` replaces the encoder check before any
       data is read: it raises ``ModelError`` for a folder that is not a causal LM or a
       ``max_length`` beyond its positions, and returns the options with what the model settles
       (its chat template, end-of-sequence ids), which the run saves and every bundle carries.
    2. After training, ``add_completions(predictions, features, examples, generator, tokenizer, options)``
       adds generated answers (``"completion"``) to a sample of the validation predictions, with
       ``torch_generator(model, options)``; ``evaluate`` scores them (and the report shows the base
       model's answers, added the same way under ``"base_completion"``).
    3. Export verification decodes each artefact's loss outputs as usual and adds its completions
       with the exporter's ``load_generator(artifact)``: agreement and ``Task.export_metric`` are
       judged on generated text. An exporter without ``load_generator`` is refused before training.
    4. ``train.epochs = 0`` is allowed for every task; for a generative one it evaluates and exports
       the base model untouched, the baseline to compare a fine-tuned run against.
    """

    def prepare_for_model(self, options: ComponentOptions, base_model: Path, max_length: int) -> ComponentOptions: ...

    def torch_generator(self, model: Any, options: ComponentOptions) -> Generator: ...

    def add_completions(self, predictions: Sequence[dict[str, Any]], features: Sequence[Feature], examples: Sequence[Any],
                        generator: Generator, tokenizer: Tokenizer, options: ComponentOptions,
                        key: str = "completion") -> list[dict[str, Any]]: ...


def is_generative(task: Any) -> bool:
    """Whether ``task`` implements the optional ``GenerativeTask`` protocol."""
    return isinstance(task, GenerativeTask)


@runtime_checkable
class WarmStartTask(Protocol):
    """Optional protocol of a task that can add labels to a trained model (``builder run --from``,
    docs/updates.md).

    Every task with the feedback contract (``to_store`` / ``from_store``) can be updated with the
    labels its parent had: the engine loads the parent with ``Task.load_model``. A task with
    ``warm_start_model`` builds the update's starting model itself and may add labels:
    ``labels`` starts with ``parent_labels`` in their order (class ids keep their meaning), then the
    new ones; ``train_features`` are the update's encoded training examples (new + replayed), to
    initialise the new labels' weights from. Without it, new labels are refused before training.
    """

    def warm_start_model(self, parent_model_dir: Path, parent_labels: Sequence[str], labels: Sequence[str],
                         options: ComponentOptions, train_features: Sequence[Feature] | None = None) -> Any: ...


# ---------------------------------------------------------------------------------------------
# Trainers
# ---------------------------------------------------------------------------------------------


@dataclass
class TrainingJob:
    """Everything a trainer needs; built by the engine.

    ``evaluate(model)`` runs the model over the validation set and returns the task's metrics.
    ``metric`` is the metric to maximise for early stopping and best-model selection.
    ``checkpoint_dir`` is where the trainer writes resumable checkpoints.
    """

    model: Any
    train_features: list[Feature]
    collate: Callable[[Sequence[Feature]], dict[str, Any]]
    evaluate: Callable[[Any], dict[str, float]]
    settings: TrainSection
    options: ComponentOptions
    metric: str
    checkpoint_dir: Path
    callbacks: CallbackList
    stop_event: threading.Event
    #: checkpoint folder to resume from (the newest intact checkpoint in it is used), or None.
    resume_from: Path | None = None


@dataclass
class TrainingOutcome:
    """What training produced: the best model (adapters merged, on CPU, eval mode) and its metrics."""

    model: Any
    best_metrics: dict[str, float]
    best_epoch: int
    global_step: int
    epochs_run: int
    stopped_early: bool
    examples_per_second: float
    history: list[dict[str, float]] = field(default_factory=list)
    #: True if training stopped because ``stop_event`` was set (a checkpoint was written).
    interrupted: bool = False


class Trainer(Component):
    """A training backend (full fine-tuning, LoRA, ...)."""

    #: learning rate used when the recipe sets none (LoRA adapters need a much higher one).
    default_learning_rate: ClassVar[float] = 1e-4

    @abstractmethod
    def train(self, job: TrainingJob) -> TrainingOutcome:
        """Train ``job.model`` and return the best model found.

        Must report through ``job.callbacks`` and stop cleanly (keeping the best model so far)
        when ``job.stop_event`` is set.
        """


# ---------------------------------------------------------------------------------------------
# Exporters
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GateResult:
    """An exported artefact's validation predictions held to the run's verification gates (no timing).

    ``failures`` lists each broken gate in words; empty means every gate is met.
    """

    reference_metric: float
    exported_metric: float
    metric_drop: float
    agreement: Agreement
    max_abs_diff: float
    failures: tuple[str, ...]

    @property
    def passed(self) -> bool:
        return not self.failures


@dataclass(frozen=True)
class ExportJob:
    """What an exporter gets: an eval-mode CPU fp32 model and how to call it.

    ``calibration`` holds validation inputs as padded int64 numpy batches (model inputs only), for
    exporters that calibrate or measure (int8). ``gate``, when the engine verifies the export,
    scores a candidate artefact on the whole validation set against the same gates as the final
    verification (through the exporter's own ``load_runner``), so an exporter can search for a
    variant that passes (e.g. which matrix products int8 must keep in fp32). Both are empty/None
    when the caller has no validation data; an exporter must then export as configured.
    """

    model: Any
    example_batch: dict[str, Any]
    input_names: tuple[str, ...]
    output_names: tuple[str, ...]
    output_dir: Path
    options: ComponentOptions
    calibration: Sequence[Mapping[str, np.ndarray]] = ()
    gate: Callable[[ExportedArtifact], GateResult] | None = None


@dataclass(frozen=True)
class ExportedArtifact:
    """One exported file and the variant it is (``fp32``, ``int8``...).

    ``details`` is JSON-ready information a runtime needs besides the file (the ``onnx`` exporter
    names its prepared graph there); the engine writes it to the bundle manifest's
    ``model_details`` under the variant.

    ``optional`` marks an optimisation of the reference export (``int8`` beside ``fp32``): when
    it breaks a verification threshold the engine rejects it (recorded in the manifest; the
    bundle's default variant falls back to a verified one) instead of failing the run, unless the
    recipe sets ``export.on_failure = "fail"``. A non-optional artefact that fails always fails
    the run.
    """

    exporter: str
    variant: str
    path: Path
    details: Mapping[str, Any] = field(default_factory=dict)
    optional: bool = False


Runner = Callable[[Mapping[str, "np.ndarray"]], Outputs]
"""Runs an exported model on a batch of int64 numpy inputs and returns its named outputs."""


class Exporter(Component):
    """Turns a trained model into a deployable artefact, and can run that artefact back."""

    @abstractmethod
    def export(self, job: ExportJob) -> list[ExportedArtifact]:
        """Write the artefact(s) under ``job.output_dir`` (atomically) and return them."""

    @abstractmethod
    def load_runner(self, artifact: ExportedArtifact, output_names: Sequence[str]) -> Runner:
        """Load an exported artefact and return a function that runs it on numpy inputs."""


# ---------------------------------------------------------------------------------------------
# Loggers
# ---------------------------------------------------------------------------------------------


class Logger(Component):
    """A metrics sink a recipe switches on in its ``[log]`` table (``[log] tensorboard = true``).

    The always-on ``metrics.jsonl`` log is built in; loggers add other destinations. Loggers run
    only in the process that writes the run directory (rank 0 of a distributed run).
    """

    @abstractmethod
    def create(self, run_dir: Path, options: ComponentOptions) -> Callback:
        """Return the callback that logs this run (events from ``assistant_builder.callbacks``).

        Raise ``ConfigError``/``BuilderError`` with an install hint if a dependency is missing.
        The callback must flush what it wrote on ``on_run_end`` and ``on_exception``; if it has a
        ``close()`` method the engine calls it when the run ends, however it ends.
        """


def evaluate_with_options(task: Task, predictions: Sequence[dict[str, Any]], examples: Sequence[Any], labels: Sequence[str],
                          options: ComponentOptions | None) -> Evaluation:
    """``task.evaluate(...)``, with ``options=options`` when the task's ``evaluate`` accepts that keyword."""
    import inspect

    if options is not None and "options" in inspect.signature(task.evaluate).parameters:
        return task.evaluate(predictions, examples, labels, options=options)  # type: ignore[call-arg]
    return task.evaluate(predictions, examples, labels)
