"""Likely label errors in classification training data (``builder data check --label-errors``).

1. Every training text is embedded once with the frozen base model (``embeddings.py``).
2. ``folds``-fold stratified cross-validation of a logistic regression on those embeddings gives
   each example *out-of-fold* predicted probabilities: from a model that never saw it. This is
   k fits of a linear model (seconds), not k fine-tunings.
3. Confident learning (cleanlab's ``find_label_issues``, Northcutt et al. 2021) estimates how often
   each label is confused with each other one and flags the examples that are most likely wrong;
   they are ranked by cleanlab's self-confidence label quality (the out-of-fold probability of the
   given label). ``score`` = 1 - that quality: near 1, the model is sure the label is wrong.

Needs the ``train`` and ``quality`` extras (torch, transformers, scikit-learn, cleanlab), imported
only inside the functions here.
"""

from __future__ import annotations

import time
import warnings
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from assistant_builder.contracts import ExampleView, Finding
from assistant_builder.errors import BuilderError

INSTALL_HINT = "pip install 'assistant-builder[train,quality]' (torch, transformers, scikit-learn, cleanlab)"


@dataclass(frozen=True)
class LabelIssue:
    """One training example whose label is likely wrong."""

    where: str
    text: str
    given: str
    suspected: str
    score: float
    given_probability: float
    suspected_probability: float
    top: tuple[tuple[str, float], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"where": self.where, "text": self.text, "given": self.given, "suspected": self.suspected, "score": round(self.score, 4),
                "given_probability": round(self.given_probability, 4), "suspected_probability": round(self.suspected_probability, 4)}

    def finding(self) -> Finding:
        return Finding("label_error", "warning", self.where,
                       f"given '{self.given}', suspected '{self.suspected}' (score {self.score:.2f}: out-of-fold probability "
                       f"{self.given_probability:.2f} for the given label, {self.suspected_probability:.2f} for the suspected one): "
                       f"{self.text[:60]!r}")


@dataclass
class LabelErrorSearch:
    """The flagged examples (most likely wrong first) and how the search went."""

    issues: list[LabelIssue]
    examples: int
    folds: int
    out_of_fold_accuracy: float
    skipped: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"flagged": len(self.issues), "examples": self.examples, "folds": self.folds,
                "out_of_fold_accuracy": round(self.out_of_fold_accuracy, 4), "not_ranked": self.skipped,
                "seconds": {k: round(v, 2) for k, v in self.seconds.items()}, "issues": [i.to_dict() for i in self.issues]}


def require_dependencies() -> None:
    """Raise a ``BuilderError`` with the install hint if torch, transformers, sklearn or cleanlab is missing."""
    import importlib.util

    missing = [name for name in ("torch", "transformers", "sklearn", "cleanlab") if importlib.util.find_spec(name) is None]
    if missing:
        raise BuilderError(f"--label-errors needs {', '.join(missing)}, which {'is' if len(missing) == 1 else 'are'} not installed",
                           hint=INSTALL_HINT)


#: inverse L2 strength of the logistic regression on standardised embeddings
C = 0.1


def out_of_fold_probabilities(features: np.ndarray, labels: np.ndarray, num_classes: int, folds: int, seed: int) -> np.ndarray:
    """``[n, num_classes]`` probabilities of a logistic regression on standardised features, each
    row from the fold that held it out."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    probabilities = np.zeros((len(labels), num_classes), dtype=np.float64)
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "the least populated class has only N members" and convergence notes
        for train_index, held_index in splitter.split(features, labels):
            model = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=300))
            model.fit(features[train_index], labels[train_index])
            probabilities[np.ix_(held_index, model.classes_)] = model.predict_proba(features[held_index])
    return probabilities


def find_label_errors(views: Sequence[ExampleView], model_dir: Path, max_length: int, folds: int = 5, seed: int = 0,
                      on_progress: Callable[[str], None] = lambda message: None) -> LabelErrorSearch:
    """Rank the labelled, non-empty training examples of ``views`` whose label is likely wrong."""
    require_dependencies()
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores

    from assistant_builder.dataquality.embeddings import embed_texts

    usable = [v for v in views if v.label is not None and v.text.strip()]
    counts = Counter(v.label for v in usable)
    skipped = sorted(label for label, n in counts.items() if n < 2)
    usable = [v for v in usable if counts[v.label] >= 2]
    names = sorted({v.label for v in usable})  # type: ignore[type-var]
    if len(names) < 2:
        raise BuilderError("--label-errors needs at least two labels with two or more training examples each",
                           hint="add labelled examples")
    folds = max(2, min(folds, max(counts[n] for n in names)))
    index = {name: i for i, name in enumerate(names)}
    labels = np.array([index[v.label] for v in usable], dtype=np.int64)  # type: ignore[index]
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    on_progress(f"embedding {len(usable)} training texts with the frozen base model")
    features = embed_texts([v.text for v in usable], model_dir, max_length)
    seconds["embed"] = time.perf_counter() - started
    started = time.perf_counter()
    on_progress(f"{folds}-fold out-of-fold predictions (logistic regression on the standardised embeddings)")
    probabilities = out_of_fold_probabilities(features, labels, len(names), folds, seed)
    seconds["cross_validate"] = time.perf_counter() - started
    started = time.perf_counter()
    flagged = find_label_issues(labels=labels, pred_probs=probabilities, return_indices_ranked_by="self_confidence", n_jobs=1)
    quality = get_label_quality_scores(labels, probabilities, method="self_confidence")
    seconds["confident_learning"] = time.perf_counter() - started
    issues = []
    for i in flagged:
        row = probabilities[i]
        top = np.argsort(-row)[:3]
        suspected = int(top[0]) if int(top[0]) != labels[i] else int(top[1])
        view = usable[i]
        issues.append(LabelIssue(view.source, view.text, names[labels[i]], names[suspected], float(1.0 - quality[i]),
                                 float(row[labels[i]]), float(row[suspected]), tuple((names[int(t)], float(row[t])) for t in top)))
    accuracy = float((probabilities.argmax(axis=1) == labels).mean())
    return LabelErrorSearch(issues, len(usable), folds, accuracy, skipped, seconds)
