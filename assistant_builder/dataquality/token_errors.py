"""Likely tag errors in NER training data (``builder data check --label-errors`` on a ``token_spans`` task).

The same recipe as ``label_errors.py``, per word: each word's vector is the frozen base model's
last hidden state at the word's first sub-token (in its sentence's context); ``folds``-fold
cross-validation *over sentences* of a logistic regression on those vectors gives every word
out-of-fold probabilities for each IOB2 tag; cleanlab's ``token_classification`` module
(``find_label_issues``, confident learning per token) flags the words whose tag is most likely
wrong, ranked by its token label quality. Words cut off by ``max_length`` are not ranked.

Imports torch, transformers, scikit-learn and cleanlab inside the functions only.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from assistant_builder.dataquality.label_errors import C, LabelErrorSearch, LabelIssue, require_dependencies
from assistant_builder.errors import BuilderError


def embed_words(sentences: Sequence[Sequence[str]], model_dir: Path, max_length: int, batch_size: int = 32) -> list[np.ndarray]:
    """Per sentence, ``[words, hidden]`` vectors (NaN rows for words past ``max_length``)."""
    import torch
    from transformers import AutoModel
    from transformers.utils import logging as hf_logging

    from assistant_builder.tokenization import load_tokenizer, pad_token_id
    from assistant_builder.toolkit.word_encoding import encoder_words, marks_spaces

    tokenizer = load_tokenizer(model_dir, max_length)
    pad = pad_token_id(tokenizer)
    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        model = AutoModel.from_pretrained(str(model_dir))
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()
    model.eval()
    spaces = marks_spaces(tokenizer)  # byte-level BPE words keep the space before them, as the ner task encodes them
    encodings = tokenizer.encode_batch([encoder_words(tokenizer, s, spaces=spaces) for s in sentences], is_pretokenized=True)
    out = [np.full((len(s), model.config.hidden_size), np.nan, dtype=np.float32) for s in sentences]
    with torch.inference_mode():
        for start in range(0, len(sentences), batch_size):
            chunk = range(start, min(start + batch_size, len(sentences)))
            width = max(len(encodings[i].ids) for i in chunk)
            ids = torch.full((len(chunk), width), pad, dtype=torch.long)
            mask = torch.zeros((len(chunk), width), dtype=torch.long)
            for row, i in enumerate(chunk):
                n = len(encodings[i].ids)
                ids[row, :n] = torch.tensor(encodings[i].ids)
                mask[row, :n] = 1
            states = model(input_ids=ids, attention_mask=mask, token_type_ids=torch.zeros_like(ids)).last_hidden_state.numpy()
            for row, i in enumerate(chunk):
                seen: set[int] = set()
                for position, word in enumerate(encodings[i].word_ids):
                    if word is not None and word not in seen:
                        seen.add(word)
                        out[i][word] = states[row, position]
    return out


def find_tag_errors(examples: Sequence[Any], model_dir: Path, max_length: int, folds: int = 5, seed: int = 0,
                    on_progress: Callable[[str], None] = lambda message: None) -> LabelErrorSearch:
    """Rank the words of ``examples`` (objects with ``tokens``, IOB2 ``tags`` and ``source``) whose tag is likely wrong."""
    require_dependencies()
    from cleanlab.token_classification.filter import find_label_issues
    from cleanlab.token_classification.rank import get_label_quality_scores
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import KFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    sentences = [e for e in examples if e.tags]
    names = sorted({t for e in sentences for t in e.tags})
    if len(names) < 2 or len(sentences) < folds:
        raise BuilderError(f"--label-errors needs at least {folds} tagged sentences and two tags", hint="add labelled sentences or lower --folds")
    index = {t: i for i, t in enumerate(names)}
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    on_progress(f"embedding the words of {len(sentences)} training sentences with the frozen base model")
    vectors = embed_words([e.tokens for e in sentences], model_dir, max_length)
    seconds["embed"] = time.perf_counter() - started
    started = time.perf_counter()
    on_progress(f"{folds}-fold out-of-fold tag predictions (logistic regression on the word vectors)")
    labels = [np.array([index[t] for t in e.tags], dtype=np.int64) for e in sentences]
    kept = [~np.isnan(v[:, 0]) for v in vectors]
    probabilities = [np.zeros((len(e.tokens), len(names))) for e in sentences]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for train_index, held_index in KFold(n_splits=folds, shuffle=True, random_state=seed).split(np.arange(len(sentences))):
            x = np.concatenate([vectors[i][kept[i]] for i in train_index])
            y = np.concatenate([labels[i][kept[i]] for i in train_index])
            model = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=300)).fit(x, y)
            classes = model.classes_
            for i in held_index:
                if kept[i].any():
                    probabilities[i][np.ix_(np.flatnonzero(kept[i]), classes)] = model.predict_proba(vectors[i][kept[i]])
    seconds["cross_validate"] = time.perf_counter() - started
    started = time.perf_counter()
    # words past max_length have no prediction: rank the words that have one
    usable = [i for i in range(len(sentences)) if kept[i].any()]
    labels_in = [labels[i][kept[i]] for i in usable]
    probs_in = [np.clip(probabilities[i][kept[i]], 1e-9, None) for i in usable]
    probs_in = [p / p.sum(axis=1, keepdims=True) for p in probs_in]
    flagged = find_label_issues(labels_in, probs_in)
    _, token_scores = get_label_quality_scores(labels_in, probs_in)
    seconds["confident_learning"] = time.perf_counter() - started
    issues = []
    for s, w in flagged:
        sentence = sentences[usable[s]]
        word = int(np.flatnonzero(kept[usable[s]])[w])
        row = probs_in[s][w]
        given = int(labels_in[s][w])
        top = np.argsort(-row)[:3]
        suspected = int(top[0]) if int(top[0]) != given else int(top[1])
        marked = " ".join(f"[{t}]" if k == word else t for k, t in enumerate(sentence.tokens))
        issues.append(LabelIssue(f"{sentence.source} word {word + 1} ({sentence.tokens[word]!r})", marked, names[given], names[suspected],
                                 float(1.0 - np.asarray(token_scores[s])[w]), float(row[given]), float(row[suspected]),
                                 tuple((names[int(t)], float(row[t])) for t in top)))
    issues.sort(key=lambda issue: -issue.score)
    flat_labels = np.concatenate(labels_in)
    accuracy = float((np.concatenate(probs_in).argmax(axis=1) == flat_labels).mean())
    return LabelErrorSearch(issues, int(flat_labels.size), folds, accuracy, [], seconds)
