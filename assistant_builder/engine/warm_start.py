"""Warm-start updates (``builder run RECIPE --from RUN``): continue from an earlier run's weights.

Every run of a task with the feedback contract (``Task.to_store`` / ``from_store``) records what it
trained and validated on, as store records, in ``RUN/data/example_sets.json.gz``
(``record_example_sets``). An update reads its parent's record (``load_parent``) and plans
(``plan_update``):

* **new**: the training examples (the recipe's data plus ``data.extra``) whose input the parent did
  not train on, or trained on with another label (a correction);
* **held out**: a seeded share (``update.holdout``) of the new examples of the parent's labels, kept
  out of training to check the update learned what is new; never an example of a new label (the
  parent scores nothing on one, so it would tell the gate nothing and cost the label a training
  example);
* **replay**: a seeded sample of the parent's training examples (``update.replay`` per new training
  example, at least ``update.min_replay``), leaving out inputs the new data relabels;
* **labels**: the parent's, in its order (its class ids keep their meaning), then the new ones.

The update trains on new + replay for ``update.epochs``; then ``update_gate`` compares it with its
parent on the parent's validation set (it may lose at most ``update.max_forgetting``) and on the
held-out new examples (it must do at least as well as the parent). A refused update is not exported:
``UpdateRefused`` names the figures, and a server keeps its model. ``RUN/update.json`` records the
parent, the plan (what was new, what was replayed, the seed) and the gate, and is how ``--resume``
of an interrupted update finds its parent again.
"""

from __future__ import annotations

import gzip
import json
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assistant_builder.atomic import atomic_write_bytes, atomic_write_json
from assistant_builder.contracts import StoreRecord, TaskData, WarmStartTask
from assistant_builder.errors import BuilderError, ConfigError, ConfigIssue
from assistant_builder.labelling.records import dump_json

EXAMPLE_SETS = Path("data") / "example_sets.json.gz"
UPDATE_FILE = "update.json"
#: fewest new examples of the parent's labels for a held-out check (fewer: all of them train, and the report says so)
MIN_NEW_FOR_HOLDOUT = 10


class UpdateRefused(BuilderError):
    """A warm-start update that forgot too much, or did not learn what was new; it was not exported."""

    title = "update refused"
    exit_code = 3


def _record(task: Any, example: Any) -> dict[str, Any]:
    record = task.to_store(example)
    return {"payload": record.payload, "gold": record.gold}


def record_example_sets(task: Any, task_data: TaskData, run_dir: Path, train: list[dict[str, Any]] | None = None) -> bool:
    """Write ``RUN/data/example_sets.json.gz`` (labels, training and validation examples as store
    records; ``train``: the training records to write instead, an update's ``UpdatePlan.known_train``);
    False, writing nothing, for a task without the feedback contract."""
    from assistant_builder.feedback import supports_feedback

    if not supports_feedback(task):
        return False
    sets = {"labels": list(task_data.labels), "train": train if train is not None else [_record(task, e) for e in task_data.train],
            "validation": [_record(task, e) for e in task_data.validation]}
    atomic_write_bytes(run_dir / EXAMPLE_SETS, gzip.compress(json.dumps(sets, ensure_ascii=False).encode("utf-8"), mtime=0))
    return True


@dataclass
class Parent:
    """The run an update continues from."""

    run_dir: Path
    labels: list[str]
    metric: str
    metrics: dict[str, float]
    train: list[StoreRecord]
    validation: list[StoreRecord]

    @property
    def model_dir(self) -> Path:
        return self.run_dir / "model"


def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def load_parent(run_dir: str | Path, task_name: str, base_model: str, source: str) -> Parent:
    """The finished run at ``run_dir``, checked to be one an update of a ``task_name`` recipe on
    ``base_model`` (the resolved ``model.base``) can continue from; a ``ConfigError`` on ``--from`` saying why not."""
    run_dir = Path(run_dir).resolve()

    def refuse(problem: str) -> ConfigError:
        return ConfigError(source, [ConfigIssue("--from", f"{run_dir}: {problem}")])

    summary = _json(run_dir / "summary.json")
    if not isinstance(summary, dict):
        raise refuse("not a finished run (no summary.json); expected the directory of a run `builder run` completed")
    if summary.get("task") != task_name:
        raise refuse(f"is a '{summary.get('task')}' run; this recipe's task is '{task_name}' (an update continues the same task)")
    if not (run_dir / "model").is_dir():
        raise refuse("has no model/ folder to continue from")
    resolved = _json(run_dir / "recipe.resolved.json") or {}
    parent_base = (resolved.get("model") or {}).get("base")
    if parent_base is not None and str(parent_base) != str(base_model):
        raise refuse(f"was trained from base model '{parent_base}'; this recipe's model.base is '{base_model}' "
                     "(an update keeps the parent's model and tokenizer: set model.base to the parent's)")
    try:
        sets = json.loads(gzip.decompress((run_dir / EXAMPLE_SETS).read_bytes()))
    except FileNotFoundError:
        raise refuse(f"has no record of what it trained on ({EXAMPLE_SETS}); runs record it since updates exist: "
                     "train it once more with `builder run`, then update from that run") from None
    except (OSError, ValueError) as error:
        raise refuse(f"{EXAMPLE_SETS} is unreadable ({error})") from None
    metrics = (_json(run_dir / "metrics.json") or {})
    records = lambda rows, split: [StoreRecord(r["payload"], r["gold"], f"{run_dir.name} {split} #{i + 1}")  # noqa: E731
                                   for i, r in enumerate(rows)]
    return Parent(run_dir, list(sets["labels"]), str(metrics.get("metric") or summary.get("metric") or ""),
                  dict(metrics.get("metrics") or {}), records(sets["train"], "train"), records(sets["validation"], "validation"))


@dataclass
class UpdatePlan:
    """What an update trains on (``task_data``) and checks against (``held_out``, ``parent_validation``)."""

    task_data: TaskData
    new_labels: list[str]
    held_out: list[Any]
    parent_validation: list[Any]
    #: what the model has now learned, as store records: the parent's training examples (less those the
    #: new data relabels) and the new ones trained on; the next update's "already known"
    known_train: list[dict[str, Any]] = field(default_factory=list)
    report: dict[str, Any] = field(default_factory=dict)


def input_key(task: Any, example: Any) -> str:
    """An example's identity: its input as the store keeps it, without its label."""
    return dump_json(task.to_store(example).payload) or ""


def _classes(task: Any, example: Any) -> tuple[str, ...]:
    return tuple(task.example_view(example).classes)


def plan_update(task: Any, task_data: TaskData, parent: Parent, options: Any, settings: Any, seed: int) -> UpdatePlan:
    """Split the run's training data into new / held out, draw the replay sample and order the labels
    (see the module docstring). ``settings`` is the recipe's ``[update]`` section. Deterministic:
    the same data, parent and seed give the same plan (``--resume`` relies on it)."""
    parent_gold = {dump_json(r.payload) or "": dump_json(r.gold) for r in parent.train}
    new, corrected = [], 0
    seen: set[str] = set()  # the new inputs (every copy of one trains, as in a full run)
    for example in task_data.train:
        key = input_key(task, example)
        gold = dump_json(task.to_store(example).gold)
        if parent_gold.get(key) == gold:
            continue
        corrected += key in parent_gold and key not in seen
        seen.add(key)
        new.append(example)
    labels = list(parent.labels) + [label for label in task_data.labels if label not in parent.labels]
    new_labels = labels[len(parent.labels):]
    rng = random.Random(seed)
    copies: dict[str, list[int]] = {}  # an input is held out with all its copies: none of them trains
    for index, example in enumerate(new):
        copies.setdefault(input_key(task, example), []).append(index)
    order = list(copies)
    rng.shuffle(order)
    held: set[int] = set()
    # only inputs of the parent's labels can be held out: the parent scores nothing on a new label, so a
    # held-out example of one tells the gate nothing, and would cost the new label a training example
    known = set(parent.labels)
    eligible = [key for key in order if all(set(_classes(task, new[i])) <= known for i in copies[key])]
    eligible_count = sum(len(copies[key]) for key in eligible)
    if eligible_count >= MIN_NEW_FOR_HOLDOUT and settings.holdout > 0:
        quota = int(eligible_count * settings.holdout)
        for key in eligible:  # the parent's labels keep their replayed examples: any of their new ones may be held out
            if len(held) >= quota:
                break
            if len(held) + len(copies[key]) <= quota:
                held.update(copies[key])
    new_train = [e for i, e in enumerate(new) if i not in held]
    held_out = [e for i, e in enumerate(new) if i in held]
    candidates = [r for r in parent.train if (dump_json(r.payload) or "") not in seen]
    size = min(len(candidates), max(settings.min_replay, int(round(settings.replay * len(new_train)))))
    replay_records = rng.sample(candidates, size) if size < len(candidates) else candidates
    from_store = lambda record: task.from_store(record, labels, options)  # noqa: E731
    replay = [from_store(r) for r in replay_records]
    parent_validation = [from_store(r) for r in parent.validation]
    train = new_train + replay
    rng.shuffle(train)
    report = {
        "parent": str(parent.run_dir), "seed": seed, "labels": len(labels), "new_labels": new_labels,
        "new_examples": len(new), "corrected": corrected, "new_trained": len(new_train), "held_out": len(held_out),
        "replayed": len(replay), "parent_train_examples": len(parent.train), "training_examples": len(train),
        "epochs": settings.epochs, "replay_per_new": settings.replay, "min_replay": settings.min_replay,
        "new_inputs": [task.to_store(e).payload for e in new_train[:200]],
        "held_out_inputs": [task.to_store(e).payload for e in held_out[:200]],
    }
    data = TaskData(train=train, validation=list(task_data.validation), labels=labels, sources=dict(task_data.sources))
    known = [{"payload": r.payload, "gold": r.gold} for r in candidates] + [_record(task, e) for e in new_train]
    return UpdatePlan(data, new_labels, held_out, parent_validation, known, report)


def describe_plan(report: dict[str, Any]) -> str:
    """One stage line for the plan."""
    labels = f", new labels: {', '.join(report['new_labels'][:8])}{'...' if len(report['new_labels']) > 8 else ''}" \
        if report["new_labels"] else ""
    return (f"from {Path(report['parent']).name}: {report['new_examples']} new examples ({report['corrected']} corrections, "
            f"{report['held_out']} held out to check them), {report['replayed']} of the parent's "
            f"{report['parent_train_examples']} replayed{labels}; {report['epochs']} epochs over {report['training_examples']}")


def warm_start_model(task: Any, parent: Parent, labels: Sequence[str], options: Any, train_features: Sequence[Any]) -> Any:
    """The model an update starts from: ``Task.warm_start_model`` where the task has it (it may add
    labels), else the parent's model as ``Task.load_model`` reads it (same labels only)."""
    if isinstance(task, WarmStartTask):
        return task.warm_start_model(parent.model_dir, list(parent.labels), list(labels), options, train_features)
    return task.load_model(parent.model_dir).train()


def scaled_learning_rates(settings: Any, trainer: Any, scale: float) -> Any:
    """``settings`` (the resolved ``train`` section) with the encoder and head learning rates times
    ``scale`` (``update.learning_rate_scale``); an unset encoder rate is the trainer's default."""
    encoder = settings.learning_rate or float(getattr(trainer, "default_learning_rate", 1e-4))
    head = settings.head_learning_rate or encoder
    return settings.model_copy(update={"learning_rate": encoder * scale, "head_learning_rate": head * scale})


def check_can_extend(task: Any, parent: Parent, new_labels: Sequence[str], source: str) -> None:
    """Refuse, before training, new labels for a task that cannot add rows to a trained model's head."""
    if new_labels and not isinstance(task, WarmStartTask):
        raise ConfigError(source, [ConfigIssue("--from", f"the data has labels the parent run {parent.run_dir.name} lacks "
                                               f"({', '.join(new_labels[:8])}), and task '{task.name}' cannot add labels to a "
                                               "trained model (it has no Task.warm_start_model); train a full run instead")])


#: the held-out check refuses an update only when it is worse than its parent beyond chance: a one-sided
#: sign test over the held-out examples on which the two differ, at this significance level
HELD_OUT_SIGNIFICANCE = 0.05


@dataclass(frozen=True)
class PairedScores:
    """The parent and the update on the same held-out examples: their metric, and on how many examples
    the update scores lower (``losses``) or higher (``wins``) than the parent."""

    before: float | None
    after: float | None
    wins: int = 0
    losses: int = 0

    @property
    def p_value(self) -> float:
        """P(at least ``losses`` losses of ``wins + losses`` | neither model better): the sign test, one-sided."""
        from scipy.stats import binomtest

        n = self.wins + self.losses
        return 1.0 if n == 0 or self.losses == 0 else float(binomtest(self.losses, n, 0.5, alternative="greater").pvalue)


def update_gate(metric: str, before: float | None, after: float, held: PairedScores | None, max_forgetting: float) -> dict[str, Any]:
    """The verdict on an update: ``forgetting`` (parent's validation metric before minus after) must
    be at most ``max_forgetting``; on the held-out new examples the update must do at least as well as
    the parent: it is refused when it scores lower *and* loses to the parent on significantly more of
    them than it wins (``PairedScores.p_value`` below ``HELD_OUT_SIGNIFICANCE``), so that one answer in
    a small held-out set does not refuse a good model."""
    reasons = []
    forgetting = None if before is None else round(before - after, 6)
    if forgetting is not None and forgetting > max_forgetting + 1e-9:
        reasons.append(f"it forgot: {metric} on the parent's validation set fell from {before:.4f} to {after:.4f} "
                       f"({forgetting * 100:.2f} points; update.max_forgetting allows {max_forgetting * 100:.2f})")
    held_out: dict[str, Any] = {"before": None, "after": None}
    if held is not None:
        p_value = held.p_value
        held_out = {"before": held.before, "after": held.after, "wins": held.wins, "losses": held.losses, "p_value": round(p_value, 4)}
        worse = held.after is not None and held.before is not None and held.after + 1e-9 < held.before
        if worse and p_value < HELD_OUT_SIGNIFICANCE:
            reasons.append(f"it did not learn what is new: {metric} on the held-out new examples is {held.after:.4f}, the parent's "
                           f"{held.before:.4f} (worse on {held.losses}, better on {held.wins}: p = {p_value:.3f} by a sign test)")
    return {"metric": metric, "parent_validation": {"before": before, "after": after, "forgetting": forgetting},
            "held_out_new": held_out, "max_forgetting": max_forgetting, "passed": not reasons, "reasons": reasons}


def paired_scores(task: Any, examples: Sequence[Any], labels: Sequence[str], metric: str,
                  parent: tuple[list[dict[str, Any]], Any], update: tuple[list[dict[str, Any]], Any]) -> PairedScores:
    """The parent's and the update's ``metric`` on ``examples`` from their predictions (each with the task
    options it decides with), and per example which scores higher (the metric of the example alone)."""
    from assistant_builder.contracts import evaluate_with_options

    def score(predictions: Sequence[dict[str, Any]], chosen: Sequence[Any], options: Any) -> float | None:
        value = evaluate_with_options(task, list(predictions), list(chosen), list(labels), options).metrics.get(metric)
        return None if value is None else float(value)

    (before_predictions, before_options), (after_predictions, after_options) = parent, update
    wins = losses = 0
    for example, old, new in zip(examples, before_predictions, after_predictions):
        old_score, new_score = score([old], [example], before_options), score([new], [example], after_options)
        if old_score is None or new_score is None or abs(old_score - new_score) < 1e-12:
            continue
        wins, losses = wins + (new_score > old_score), losses + (new_score < old_score)
    return PairedScores(score(before_predictions, examples, before_options), score(after_predictions, examples, after_options),
                        wins, losses)


def evaluate_examples(task: Any, examples: Sequence[Any], labels: Sequence[str], options: Any, metric: str,
                      predict: Callable[[Sequence[Any]], list[dict[str, Any]]]) -> float | None:
    """``metric`` of ``predict``'s predictions on ``examples`` (None when there are none, or the task does not report it)."""
    from assistant_builder.contracts import evaluate_with_options

    if not examples:
        return None
    value = evaluate_with_options(task, predict(examples), list(examples), list(labels), options).metrics.get(metric)
    return None if value is None else float(value)


def write_update_record(run_dir: Path, record: dict[str, Any]) -> None:
    atomic_write_json(run_dir / UPDATE_FILE, record)


def read_update_record(run_dir: Path) -> dict[str, Any] | None:
    """``RUN/update.json`` of an update run, or None for a full run."""
    value = _json(run_dir / UPDATE_FILE)
    return value if isinstance(value, dict) else None


def refused_update(run_dir: Path) -> str | None:
    """Why the update at ``run_dir`` was refused (its gate's reasons), or None (kept, or not an update)."""
    record = read_update_record(run_dir)
    gate = (record or {}).get("gate") or {}
    return "; ".join(gate.get("reasons") or ["refused"]) if gate and not gate.get("passed", True) else None
